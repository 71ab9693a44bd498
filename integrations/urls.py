from django.urls import path

from .mautic.webhook import MauticWebhookView

urlpatterns = [
    path("api/webhooks/mautic", MauticWebhookView.as_view(), name="mautic-webhook"),
    path("api/webhooks/mautic/", MauticWebhookView.as_view(), name="mautic-webhook-slash"),
]
