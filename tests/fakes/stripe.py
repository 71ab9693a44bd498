"""The fake Stripe lives in devtools/standins/stripe.py: the local run's Stripe stand-in is the same code."""

from devtools.standins.stripe import (
    API_VERSION,
    FIXTURES,
    FakeStripe,
    SubscriptionWorld,
    fixture,
    new_id,
    signature_header,
    signed_request,
    stripe_event,
)

__all__ = [
    "API_VERSION",
    "FIXTURES",
    "FakeStripe",
    "SubscriptionWorld",
    "fixture",
    "new_id",
    "signature_header",
    "signed_request",
    "stripe_event",
]
