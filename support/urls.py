from django.urls import path

from . import views

urlpatterns = [
    path("api/discord/interactions", views.discord_interactions, name="discord-interactions"),
]
