from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing.stripe_webhook.endpoint import webhook_endpoint_configure
from core.configuration import provider_is_configured


class Command(BaseCommand):
    help = (
        "Create or update dj-stripe's WebhookEndpoint row (the signing secret of /api/webhooks/stripe) from "
        "STRIPE_WEBHOOK_SECRET. Idempotent: run it at every deployment."
    )

    def add_arguments(self, parser):
        parser.add_argument("--secret", help="Signing secret (whsec_...); default: STRIPE_WEBHOOK_SECRET.")
        parser.add_argument("--allow-missing", action="store_true", help="Exit quietly when no secret is set.")

    def handle(self, *args, secret=None, allow_missing=False, **options):
        if not secret and not provider_is_configured("Stripe webhooks"):  # billing/providers.py
            if allow_missing:
                self.stdout.write("STRIPE_WEBHOOK_SECRET is not set; the Stripe webhook stays unconfigured.")
                return
            raise CommandError("STRIPE_WEBHOOK_SECRET is not set (see .env.example)")
        secret = secret or settings.STRIPE_WEBHOOK_SECRET
        url = f"{settings.SITE_URL}/api/webhooks/stripe"
        try:
            endpoint, created = webhook_endpoint_configure(secret=secret, url=url)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{'Created' if created else 'Updated'} webhook endpoint {endpoint.id} for {url}")
