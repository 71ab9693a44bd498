from django.urls import path

from .mautic.webhook import MauticWebhookView
from .resend.webhooks import ResendTrackingWebhookView

urlpatterns = [
    path("api/webhooks/mautic", MauticWebhookView.as_view(), name="mautic-webhook"),
    path("api/webhooks/mautic/", MauticWebhookView.as_view(), name="mautic-webhook-slash"),
    # Resend's tracking webhook, at the path Resend is configured with. Only this view: anymail.urls would mount every
    # provider's inbound and tracking endpoints (integrations/resend/webhooks.py says why that is a problem).
    path("anymail/resend/tracking/", ResendTrackingWebhookView.as_view(), name="resend-tracking"),
]
