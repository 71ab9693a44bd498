from django.urls import path

from integrations.resend.webhooks import ResendTrackingWebhookView

from . import views

app_name = "automations"

urlpatterns = [
    path("email/unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
    # Resend's tracking webhook, at the path Resend is configured with. Only this view: anymail.urls would mount every
    # provider's inbound and tracking endpoints (integrations/resend/webhooks.py says why that is a problem).
    path("anymail/resend/tracking/", ResendTrackingWebhookView.as_view(), name="resend-tracking"),
]
