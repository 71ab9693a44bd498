from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """What a developer's machine uses in place of outside providers: the local outbox (instead of Resend) and the
    Stripe stand-in (instead of api.stripe.com). Installed everywhere so its table exists; production never fills it."""

    name = "devtools"
    verbose_name = "Local run"
