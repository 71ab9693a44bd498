from django.urls import path

from .mautic.webhook import mautic_webhook

urlpatterns = [
    path("api/webhooks/mautic", mautic_webhook, name="mautic-webhook"),
    path("api/webhooks/mautic/", mautic_webhook, name="mautic-webhook-slash"),
]
