from django.urls import path

from .card_update import card_update, card_update_done
from .retention.views import cancel_page
from .stripe_webhook.view import StripeWebhookView

# The URL the Stripe dashboard points at, with and without the trailing slash (no redirect: Stripe does not follow
# redirects for POSTs). dj-stripe's own urls are deliberately not mounted: its view would process synchronously and,
# with DEBUG on, accept a secret from a request header.
urlpatterns = [
    path("api/webhooks/stripe", StripeWebhookView.as_view(), name="stripe-webhook"),
    path("api/webhooks/stripe/", StripeWebhookView.as_view(), name="stripe-webhook-slash"),
    # The card-update link in dunning emails (a customer page, reachable from the internet).
    path("billing/card-update/<str:token>", card_update, name="billing-card-update"),
    path("billing/card-updated", card_update_done, name="billing-card-update-done"),
    # The cancel page the provisioning panel sends a customer to (a customer page, reachable from the internet).
    path("billing/cancel/<str:token>", cancel_page, name="billing-cancel"),
]
