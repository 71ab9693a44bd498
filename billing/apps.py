from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # stripe-python sends `stripe.api_version` (its own release's version, not ours) on every call that does not
        # name one, and dj-stripe names one on most calls but not all (a product's features, for one). Pinning the
        # library-wide default makes every call, ours and dj-stripe's, use STRIPE_API_VERSION, the shapes our code
        # reads (https://docs.stripe.com/api/versioning). tests/billing/test_stripe_api_version.py checks each call.
        import stripe
        from django.conf import settings

        stripe.api_version = settings.STRIPE_API_VERSION

        from core.configuration import providers_register

        from . import providers

        providers_register(*providers.PROVIDERS)

        from .support_actions import billing_staff_actions_register

        billing_staff_actions_register()
