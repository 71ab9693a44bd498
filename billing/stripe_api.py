"""The calls that fetch objects from Stripe for the webhook path, in one place (stripe-python through dj-stripe's
models, which mirror what they fetch). Pointed at the fake server in tests through stripe.api_base
(STRIPE_API_HOST).

The daily sync (billing/sync.py) and the customer e-mail update (billing/stripe_customers.py) keep their own
`StripeClient`: they list pages with their own retry and send writes with idempotency keys.
"""

import json

import stripe
from django.conf import settings
from djstripe import models as djstripe_models
from djstripe.settings import djstripe_settings


def api_key() -> str:
    return djstripe_settings.STRIPE_SECRET_KEY


def product_fetch_and_mirror(product_id: str) -> dict:
    """https://docs.stripe.com/api/products/retrieve, mirrored into dj-stripe's Product table."""
    return djstripe_models.Product._get_or_retrieve(id=product_id, api_key=api_key()).stripe_data


def subscription_fetch_and_mirror(subscription_id: str) -> djstripe_models.Subscription:
    """dj-stripe's copy of a subscription, fetched and mirrored first if it has none."""
    return djstripe_models.Subscription._get_or_retrieve(id=subscription_id, api_key=api_key())


def subscription_refetch_and_mirror(subscription_id: str) -> None:
    """The subscription's current state from Stripe (https://docs.stripe.com/api/subscriptions/retrieve), mirrored
    through dj-stripe whatever it held before."""
    data = djstripe_models.Subscription.stripe_class.retrieve(
        id=subscription_id, api_key=api_key(), stripe_version=settings.STRIPE_API_VERSION
    )
    djstripe_models.Subscription.sync_from_stripe_data(data, api_key=api_key())


def checkout_session_line_items(session_id: str) -> list[dict]:
    """Every line item of a Checkout Session, prices and products expanded
    (https://docs.stripe.com/api/checkout/sessions/line_items)."""
    line_items = stripe.checkout.Session.list_line_items(
        session_id,
        limit=100,
        expand=["data.price.product"],
        api_key=api_key(),
        stripe_version=settings.STRIPE_API_VERSION,
    )
    return [json.loads(str(item)) for item in line_items.auto_paging_iter()]
