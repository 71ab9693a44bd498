"""The calls that fetch objects from Stripe for the webhook path, in one place (stripe-python through dj-stripe's
models, which mirror what they fetch). Pointed at the fake server in tests through stripe.api_base
(STRIPE_API_HOST).

The daily sync (billing/sync.py) and the customer e-mail update (billing/stripe_customers.py) keep their own
`StripeClient`: they list pages with their own retry and send writes with idempotency keys.
"""

import json
import logging

import stripe
from django.conf import settings
from djstripe import models as djstripe_models
from djstripe.settings import djstripe_settings

from .declines import UNKNOWN, Decline, decline_from_payment_error

logger = logging.getLogger(__name__)


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


def invoice_decline_fetch(invoice_id: str) -> Decline:
    """Why the invoice's latest payment attempt failed: the invoice with its payments' payment intents expanded
    (https://docs.stripe.com/api/invoices/object#invoice_object-payments, API 2025-03-31.basil; the intent's
    `last_payment_error`: https://docs.stripe.com/api/payment_intents/object#payment_intent_object-last_payment_error).
    UNKNOWN when Stripe does not say or does not answer: the wording falls back to the general one rather than
    holding up the dunning."""
    try:
        invoice = stripe.Invoice.retrieve(
            invoice_id,
            expand=["payments.data.payment.payment_intent"],
            api_key=api_key(),
            stripe_version=settings.STRIPE_API_VERSION,
        )
    except stripe.StripeError as exc:
        logger.warning("Invoice %s: no decline reason from Stripe (%s)", invoice_id, type(exc).__name__)
        return UNKNOWN
    payments = ((json.loads(str(invoice)).get("payments") or {}).get("data")) or []
    intents = [
        (payment.get("created") or 0, (payment.get("payment") or {}).get("payment_intent"))
        for payment in payments
        if isinstance((payment.get("payment") or {}).get("payment_intent"), dict)
    ]
    if not intents:
        return UNKNOWN
    _, intent = max(intents, key=lambda pair: pair[0])
    return decline_from_payment_error(
        intent.get("last_payment_error"), payment_intent_status=intent.get("status") or ""
    )


# --- The customer portal's card-update flow (billing/card_update.py) ----------------------------------------------
# (connect, read) seconds: a customer who clicked a link is waiting. With retries on, stripe-python sends one
# Idempotency-Key per request and repeats it on its retry, so a lost answer returns the same session, never a second.
PORTAL_TIMEOUT = (4, 10)
PORTAL_RETRIES = 1


class StripePortalError(Exception):
    """Stripe refused the portal session or could not be reached. `missing_customer` when Stripe does not know the
    customer (400 resource_missing): trying again will not help."""

    def __init__(self, message: str, *, status: int | None = None, code: str = ""):
        super().__init__(message)
        self.status, self.code = status, code

    @property
    def missing_customer(self) -> bool:
        return self.code == "resource_missing"


def portal_session_for_card_update(*, stripe_customer_id: str, return_url: str) -> str:
    """A Stripe customer portal session that opens straight on "update your payment method"; returns its URL, a
    short-lived single-use credential (never stored or logged). Raises StripePortalError.
    https://docs.stripe.com/api/customer_portal/sessions/create (flow_data:
    https://docs.stripe.com/customer-management/portal-deep-links)"""
    client = stripe.StripeClient(
        api_key(),
        stripe_version=settings.STRIPE_API_VERSION,
        base_addresses={"api": stripe.api_base},  # dj-stripe sets it from STRIPE_API_HOST (the fakes in tests)
        max_network_retries=PORTAL_RETRIES,
        http_client=stripe.RequestsClient(timeout=PORTAL_TIMEOUT),
    )
    try:
        session = client.v1.billing_portal.sessions.create(
            params={
                "customer": stripe_customer_id,
                "return_url": return_url,
                "flow_data": {"type": "payment_method_update"},
            }
        )
    except stripe.StripeError as exc:
        raise StripePortalError(
            f"Stripe did not open a portal session ({type(exc).__name__})",
            status=exc.http_status,
            code=getattr(exc, "code", "") or "",
        ) from exc
    return session.url
