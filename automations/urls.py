from django.urls import path

from . import preference_views, views

app_name = "automations"

urlpatterns = [
    path("email/unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("email/preferences/<str:token>", preference_views.preferences, name="preferences"),
]
