"""What Stripe needs from the settings (core/configuration.py checks it; registered by `BillingConfig.ready()`)."""

from core.configuration import ProviderSettings

# Live mode calls Stripe with the live key: without it every call would fail, so the start fails instead.
STRIPE_LIVE = ProviderSettings(
    name="Stripe live mode", enabled_by="STRIPE_LIVE_MODE", required=("STRIPE_LIVE_SECRET_KEY",)
)
# The signing secret of /api/webhooks/stripe, copied into dj-stripe's WebhookEndpoint row by
# `manage.py stripe_webhook_endpoint`; optional (the local run uses the stand-in's).
STRIPE_WEBHOOKS = ProviderSettings(name="Stripe webhooks", required=("STRIPE_WEBHOOK_SECRET",))

PROVIDERS = (STRIPE_LIVE, STRIPE_WEBHOOKS)
