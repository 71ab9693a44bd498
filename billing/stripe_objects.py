"""Reading Stripe objects (plain dicts in the shape of API version 2025-03-31.basil) into what the CRM keeps.

Pure functions: no database, no HTTP. The product lookup (`ProductLookup`) is passed in so the webhook path (which
reads dj-stripe's synced Product rows) and the daily sync (which gets products expanded in the list) share them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

# product id -> the product object (a dict) or None when unknown
ProductLookup = Callable[[str], dict | None]


def timestamp_to_datetime(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def datetime_to_iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def object_id(value: Any) -> str:
    """An id from a field that is either the id itself or the expanded object."""
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""


def event_stripe_customer_id(event: dict) -> str:
    """The Stripe customer an event is about: its object's `customer`, or the object itself for customer.* events
    (https://docs.stripe.com/api/events/object). Empty when the event names none (a product, a price)."""
    obj = (event.get("data") or {}).get("object") or {}
    if not isinstance(obj, dict):
        return ""
    found = obj.get("id") if obj.get("object") == "customer" else object_id(obj.get("customer"))
    return str(found or "")[:255]


# Stripe's timestamps are unix seconds; anything outside this range is no date Python (or PostgreSQL) can hold.
_LATEST_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z


def stripe_event_problem(event: Any) -> str | None:
    """Why a signed body is not a Stripe event we can store and process, or None
    (https://docs.stripe.com/api/events/object: id, type, created, data.object)."""
    if not isinstance(event, dict):
        return f"the body is a JSON {type(event).__name__}, not an event object"
    for name in ("id", "type"):
        if not isinstance(event.get(name), str) or not event[name]:
            return f"`{name}` is missing or not text"
    if len(event["id"]) > 255 or len(event["type"]) > 128:
        return "`id` or `type` is too long"
    created = event.get("created")
    if isinstance(created, bool) or not isinstance(created, int) or not 0 < created <= _LATEST_TIMESTAMP:
        return "`created` is not a unix timestamp"
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        return "`data.object` is missing or not an object"
    obj = data["object"]
    if "id" in obj and not isinstance(obj["id"], str):
        return "`data.object.id` is not text"
    if event["type"].startswith(("customer.", "invoice.", "charge.", "checkout.")) and not obj.get("id"):
        return "`data.object.id` is missing"
    return None


def product_is_modready(product_id: str, product: dict | None) -> bool:
    """Only ModReady products count: listed in MODREADY_STRIPE_PRODUCT_IDS, or flagged modready=true in the product's
    Stripe metadata (https://docs.stripe.com/api/metadata)."""
    if product_id and product_id in settings.MODREADY_STRIPE_PRODUCT_IDS:
        return True
    metadata = (product or {}).get("metadata") or {}
    return str(metadata.get(settings.MODREADY_STRIPE_PRODUCT_METADATA_FLAG, "")).lower() in {"true", "1", "yes"}


@dataclass(frozen=True)
class SubscriptionState:
    """The fields of billing.Subscription, read from a Stripe subscription object."""

    stripe_subscription_id: str
    stripe_customer_id: str
    product_id: str
    product_name: str
    price_id: str
    item_id: str
    status: str
    amount: int
    currency: str
    interval: str
    interval_count: int
    quantity: int
    current_period_start: datetime | None
    current_period_end: datetime | None
    trial_start: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    cancellation_reason: str
    cancellation_feedback: str
    cancellation_comment: str
    pause_behavior: str
    pause_resumes_at: datetime | None
    discount_id: str
    metadata: dict
    stripe_created: datetime | None

    def model_fields(self) -> dict[str, Any]:
        fields = dict(self.__dict__)
        fields.pop("stripe_customer_id")
        return fields


def subscription_state(subscription: dict, *, product_lookup: ProductLookup) -> SubscriptionState | None:
    """The CRM view of a subscription, or None when none of its items is a ModReady product.

    Mapping: https://docs.stripe.com/api/subscriptions/object. Since 2025-03-31.basil the billing period lives on
    each item (`items.data[].current_period_start/end`), not on the subscription; older payloads still carry it on
    the subscription, which is the fallback. The ModReady item is the first item whose product counts.
    """
    items = ((subscription.get("items") or {}).get("data")) or []
    chosen = None
    product: dict | None = None
    for item in items:
        price = item.get("price") or item.get("plan") or {}
        product_id = object_id(price.get("product"))
        expanded = price.get("product") if isinstance(price.get("product"), dict) else None
        candidate = expanded or product_lookup(product_id)
        if product_is_modready(product_id, candidate):
            chosen, product = item, candidate or {"id": product_id}
            break
    if chosen is None:
        return None
    price = chosen.get("price") or chosen.get("plan") or {}
    recurring = price.get("recurring") or {}
    quantity = int(chosen.get("quantity") or 1)
    details = subscription.get("cancellation_details") or {}
    pause = subscription.get("pause_collection") or {}
    return SubscriptionState(
        stripe_subscription_id=subscription["id"],
        stripe_customer_id=object_id(subscription.get("customer")),
        product_id=object_id(price.get("product")),
        product_name=(product or {}).get("name") or "",
        price_id=price.get("id") or "",
        item_id=chosen.get("id") or "",
        status=subscription.get("status") or "",
        amount=int(price.get("unit_amount") or 0) * quantity,
        currency=(price.get("currency") or subscription.get("currency") or "").lower(),
        interval=recurring.get("interval") or "",
        interval_count=int(recurring.get("interval_count") or 1),
        quantity=quantity,
        current_period_start=timestamp_to_datetime(
            chosen.get("current_period_start", subscription.get("current_period_start"))
        ),
        current_period_end=timestamp_to_datetime(
            chosen.get("current_period_end", subscription.get("current_period_end"))
        ),
        trial_start=timestamp_to_datetime(subscription.get("trial_start")),
        trial_end=timestamp_to_datetime(subscription.get("trial_end")),
        cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
        cancel_at=timestamp_to_datetime(subscription.get("cancel_at")),
        canceled_at=timestamp_to_datetime(subscription.get("canceled_at")),
        ended_at=timestamp_to_datetime(subscription.get("ended_at")),
        cancellation_reason=details.get("reason") or "",
        cancellation_feedback=details.get("feedback") or "",
        cancellation_comment=(details.get("comment") or "")[:2000],
        pause_behavior=pause.get("behavior") or "",
        pause_resumes_at=timestamp_to_datetime(pause.get("resumes_at")),
        discount_id=subscription_discount_id(subscription),
        metadata=dict(subscription.get("metadata") or {}),
        stripe_created=timestamp_to_datetime(subscription.get("created")),
    )


def subscription_discount_id(subscription: dict) -> str:
    """The subscription's first discount: its `di_` id as Stripe lists it, or its coupon's id when the discounts came
    expanded (https://docs.stripe.com/api/subscriptions/object#subscription_object-discounts; a discount object
    names its coupon under `source.coupon`, older ones under `coupon`: https://docs.stripe.com/api/discounts/object)."""
    for discount in subscription.get("discounts") or []:
        if isinstance(discount, dict):
            return object_id(discount.get("coupon") or (discount.get("source") or {}).get("coupon")) or discount["id"]
        return str(discount)
    return ""


def invoice_subscription_id(invoice: dict) -> str:
    """Since 2025-03-31.basil an invoice names its subscription under `parent.subscription_details.subscription`
    (https://docs.stripe.com/api/invoices/object#invoice_object-parent); older payloads had `subscription`."""
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return object_id(details.get("subscription")) or object_id(invoice.get("subscription"))


def customer_email_and_name(customer: dict | None) -> tuple[str, str]:
    """https://docs.stripe.com/api/customers/object"""
    if not customer:
        return "", ""
    return (customer.get("email") or "").strip(), (customer.get("name") or "").strip()
