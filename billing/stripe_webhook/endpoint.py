"""Stripe webhook configuration and signature: dj-stripe's WebhookEndpoint row holds the signing secret
(manage.py stripe_webhook_endpoint writes it), read on every delivery through a short per-process cache."""

import time

import stripe
from django.conf import settings
from django.db import transaction
from djstripe import models as djstripe_models


def webhook_endpoint_id() -> str:
    return settings.BILLING_WEBHOOK_ENDPOINT_ID


def webhook_endpoint_get() -> djstripe_models.WebhookEndpoint | None:
    return djstripe_models.WebhookEndpoint.objects.filter(id=webhook_endpoint_id()).first()


# The endpoint row is read on every delivery; keeping it for a few seconds per process takes a query off the ack
# path. A rotated secret reaches every worker within ENDPOINT_CACHE_SECONDS (Stripe retries what fails meanwhile).
ENDPOINT_CACHE_SECONDS = 30.0
_endpoint_cache: dict[str, tuple[float, djstripe_models.WebhookEndpoint]] = {}


def webhook_endpoint_cached() -> djstripe_models.WebhookEndpoint | None:
    now = time.monotonic()
    cached = _endpoint_cache.get("endpoint")
    if cached and cached[0] > now:
        return cached[1]
    endpoint = webhook_endpoint_get()
    if endpoint is not None:
        _endpoint_cache["endpoint"] = (now + ENDPOINT_CACHE_SECONDS, endpoint)
    return endpoint


def webhook_endpoint_cache_clear() -> None:
    _endpoint_cache.clear()


@transaction.atomic
def webhook_endpoint_configure(*, secret: str, url: str) -> tuple[djstripe_models.WebhookEndpoint, bool]:
    """Create or update dj-stripe's WebhookEndpoint row that holds the signing secret. Returns (endpoint, created)."""
    if not secret.startswith("whsec_"):
        raise ValueError("STRIPE_WEBHOOK_SECRET must be the endpoint's signing secret (whsec_...)")
    endpoint, created = djstripe_models.WebhookEndpoint.objects.update_or_create(
        id=webhook_endpoint_id(),
        defaults={
            "secret": secret,
            "url": url,
            "status": "enabled",
            "enabled_events": ["*"],
            "api_version": settings.STRIPE_API_VERSION,
            "livemode": settings.STRIPE_LIVE_MODE,
            "djstripe_tolerance": settings.BILLING_WEBHOOK_TOLERANCE,
            "djstripe_validation_method": "verify_signature",
        },
    )
    transaction.on_commit(webhook_endpoint_cache_clear)
    return endpoint, created


def signature_verify(*, payload: bytes, header: str, secret: str) -> bool:
    """Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]; HMAC-SHA256 over "<t>.<raw body>". Any v1 may match
    (secret rotation); the timestamp must be within the tolerance. https://docs.stripe.com/webhooks#verify-manually"""
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"), header, secret, settings.BILLING_WEBHOOK_TOLERANCE
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError, TypeError):
        # TypeError: hmac.compare_digest refuses non-ASCII text, which a forged header can carry.
        return False
    return True
