from django.urls import path

from . import link_views, views

urlpatterns = [
    path("api/discord/interactions", views.DiscordInteractionsView.as_view(), name="discord-interactions"),
    # The customer's page behind the emailed link that connects their Discord account (support/identity.py).
    path("support/discord-link/<str:token>", link_views.discord_link, name="discord-link"),
]
