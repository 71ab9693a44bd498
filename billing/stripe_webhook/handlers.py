"""Our Stripe event handlers, each in two halves (https://docs.stripe.com/api/events/types):

    fetch(event) -> fetched   runs before the processing row is locked (processing.py): every call to Stripe the
                              handler needs (billing/stripe_api.py), mirrored through dj-stripe; returns what apply
                              needs that the mirror does not hold (a checkout's line items).
    apply(event, occurred_at, fetched)
                              runs in the locking transaction: reads the mirror and calls billing.services, without
                              calling Stripe (the product lookup and the dj-stripe fallbacks fetch only when another
                              worker's change raced the fetch).

A new event type is one `apply` (and a `fetch` when it needs Stripe) here, and one HANDLERS line.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from djstripe import models as djstripe_models

from .. import selectors, stripe_api
from ..services import checkouts, crm_customers, disputes, invoices, subscriptions
from ..stripe_objects import invoice_subscription_id, object_id, subscription_state


def djstripe_product_lookup(product_id: str) -> dict | None:
    """A product from dj-stripe's mirror, fetched and mirrored first if it is not there yet (one call per product)."""
    if not product_id:
        return None
    data = djstripe_models.Product.objects.filter(id=product_id).values_list("stripe_data", flat=True).first()
    if data is None:
        data = stripe_api.product_fetch_and_mirror(product_id)
    return data


def _djstripe_customer_data(customer_id: str) -> dict | None:
    if not customer_id:
        return None
    return djstripe_models.Customer.objects.filter(id=customer_id).values_list("stripe_data", flat=True).first()


def subscription_apply_from_djstripe(*, subscription_id: str, occurred_at: datetime | None = None):
    """Apply dj-stripe's synced copy of a subscription (fetching and syncing it first if dj-stripe lacks it)."""
    djsub = djstripe_models.Subscription.objects.filter(id=subscription_id).first()
    if djsub is None:
        djsub = stripe_api.subscription_fetch_and_mirror(subscription_id)
    data = djsub.stripe_data
    return subscriptions.subscription_apply_stripe_state(
        stripe_subscription=data,
        product_lookup=djstripe_product_lookup,
        stripe_customer=_djstripe_customer_data(object_id(data.get("customer"))),
        djstripe_subscription_pk=djsub.pk,
        occurred_at=occurred_at,
    )


def _subscription_fetch(subscription_id: str, *, refetch: bool = False) -> None:
    """The subscription in dj-stripe's mirror (fetched when missing, or always with `refetch`), and the products its
    apply will look up (subscription_state asks the same lookups in the same order, so apply finds them mirrored)."""
    if refetch:
        stripe_api.subscription_refetch_and_mirror(subscription_id)
    djsub = djstripe_models.Subscription.objects.filter(id=subscription_id).first()
    if djsub is None:
        djsub = stripe_api.subscription_fetch_and_mirror(subscription_id)
    subscription_state(djsub.stripe_data, product_lookup=djstripe_product_lookup)


def _fetch_subscription(event) -> None:
    _subscription_fetch(event.data["object"]["id"])


def _apply_subscription(event, occurred_at: datetime, fetched: Any) -> None:
    subscription_id = event.data["object"]["id"]
    subscription_apply_from_djstripe(subscription_id=subscription_id, occurred_at=occurred_at)
    if event.type == "customer.subscription.trial_will_end":
        data = djstripe_models.Subscription.objects.get(id=subscription_id).stripe_data
        subscriptions.subscription_trial_will_end_record(stripe_subscription=data, occurred_at=occurred_at)


def _invoice_data(event) -> dict:
    invoice = djstripe_models.Invoice.objects.filter(id=event.data["object"]["id"]).first()
    return invoice.stripe_data if invoice else event.data["object"]


def _is_failed_attempt(invoice: dict) -> bool:
    return invoice.get("status") == "open" and int(invoice.get("attempt_count") or 0) >= 1


def _fetch_invoice(event):
    """The subscription's current state for a failed attempt, and why the attempt failed (billing/declines.py)."""
    data = _invoice_data(event)
    subscription_id = invoice_subscription_id(data)
    if not subscription_id:
        return None
    if _is_failed_attempt(data):
        # A failed attempt counts only while the subscription can still be saved, and the CRM may not know yet that
        # Stripe has canceled it (the customer.subscription.deleted of the last retry can come after this event, or
        # be waiting in another worker). Ask Stripe for the subscription's current state first: one call, only for
        # failures.
        _subscription_fetch(subscription_id, refetch=True)
        return stripe_api.invoice_decline_fetch(data["id"])
    if selectors.subscription_get_by_stripe_id(stripe_subscription_id=subscription_id) is None:
        # The invoice event may arrive before (or instead of) the subscription's own: apply will need it.
        _subscription_fetch(subscription_id)
    return None


def _apply_invoice(event, occurred_at: datetime, fetched: Any) -> None:
    data = _invoice_data(event)
    subscription_id = invoice_subscription_id(data)
    if not subscription_id:
        return
    if (
        _is_failed_attempt(data)
        or selectors.subscription_get_by_stripe_id(stripe_subscription_id=subscription_id) is None
    ):
        # The state fetched just before (fetch above): the failed attempt's current subscription, or the one the
        # CRM does not have yet.
        subscription_apply_from_djstripe(subscription_id=subscription_id, occurred_at=occurred_at)
    invoices.invoice_apply_stripe_state(stripe_invoice=data, occurred_at=occurred_at, decline=fetched)


def _apply_dispute(event, occurred_at: datetime, fetched: Any) -> None:
    dispute = djstripe_models.Dispute.objects.filter(id=event.data["object"]["id"]).first()
    data = dispute.stripe_data if dispute else event.data["object"]
    charge_id = object_id(data.get("charge"))
    charge = djstripe_models.Charge.objects.filter(id=charge_id).values_list("stripe_data", flat=True).first()
    customer_id = object_id((charge or {}).get("customer"))
    disputes.dispute_opened_record(stripe_dispute=data, stripe_customer_id=customer_id, occurred_at=occurred_at)


def _session_data(event) -> dict:
    session = djstripe_models.Session.objects.filter(id=event.data["object"]["id"]).first()
    return session.stripe_data if session else event.data["object"]


def _fetch_checkout_line_items(event) -> list[dict]:
    data = _session_data(event)
    # https://docs.stripe.com/api/checkout/sessions/line_items: dj-stripe retrieves the session with line_items
    # expanded; only a session with more items than that page holds needs its own call.
    expanded = data.get("line_items") or {}
    if expanded.get("data") is not None and not expanded.get("has_more"):
        items = expanded["data"]
    else:
        items = stripe_api.checkout_session_line_items(data["id"])
    for item in items:  # the products checkout_completed_record will look up, mirrored now
        product = (item.get("price") or {}).get("product")
        if not isinstance(product, dict) and object_id(product) != settings.STRIPE_VIP_RESERVATION_PRODUCT_ID:
            djstripe_product_lookup(object_id(product))
    return items


def _apply_checkout_completed(event, occurred_at: datetime, line_items: list[dict]) -> None:
    checkouts.checkout_completed_record(
        stripe_session=_session_data(event),
        line_items=line_items,
        product_lookup=djstripe_product_lookup,
        occurred_at=occurred_at,
        stripe_event_type=event.type,
    )


def _apply_customer(event, occurred_at: datetime, fetched: Any) -> None:
    obj = event.data["object"]
    if obj.get("object") != "customer":
        return
    data = _djstripe_customer_data(obj["id"]) or obj
    crm_customers.stripe_customer_apply(stripe_customer=data)


@dataclass(frozen=True)
class Handler:
    apply: Callable[[Any, datetime, Any], None]
    fetch: Callable[[Any], Any] | None = None


SUBSCRIPTION = Handler(apply=_apply_subscription, fetch=_fetch_subscription)
INVOICE = Handler(apply=_apply_invoice, fetch=_fetch_invoice)
CHECKOUT = Handler(apply=_apply_checkout_completed, fetch=_fetch_checkout_line_items)
CUSTOMER = Handler(apply=_apply_customer)

HANDLERS: dict[str, Handler] = {
    "customer.subscription.created": SUBSCRIPTION,
    "customer.subscription.updated": SUBSCRIPTION,
    "customer.subscription.deleted": SUBSCRIPTION,
    "customer.subscription.paused": SUBSCRIPTION,
    "customer.subscription.resumed": SUBSCRIPTION,
    "customer.subscription.trial_will_end": SUBSCRIPTION,
    "invoice.paid": INVOICE,
    "invoice.payment_succeeded": INVOICE,
    "invoice.payment_failed": INVOICE,
    "charge.dispute.created": Handler(apply=_apply_dispute),
    "checkout.session.completed": CHECKOUT,
    "checkout.session.async_payment_succeeded": CHECKOUT,
    "customer.created": CUSTOMER,
    "customer.updated": CUSTOMER,
}
