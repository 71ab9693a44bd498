"""checkout.session.completed and async_payment_succeeded: a ModReady or VIP-reservation checkout."""

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from customers import events
from customers.services import customer_upsert

from ..stripe_objects import ProductLookup, object_id, product_is_modready, timestamp_to_datetime
from .crm_customers import MissingCustomerEmail
from .facts import fact_record


@transaction.atomic
def checkout_completed_record(
    *,
    stripe_session: dict,
    line_items: list[dict],
    product_lookup: ProductLookup,
    occurred_at: datetime | None = None,
    stripe_event_type: str = "checkout.session.completed",
) -> bool:
    """checkout.session.completed and checkout.session.async_payment_succeeded (a delayed payment method that has
    now paid): https://docs.stripe.com/api/checkout/sessions/object, line items from
    https://docs.stripe.com/api/checkout/sessions/line_items. Counts when any line item is a ModReady product or
    the crowdfunding VIP reservation (STRIPE_VIP_RESERVATION_PRODUCT_ID, which integrations fulfils)."""
    product_ids = []
    vip_product_id = settings.STRIPE_VIP_RESERVATION_PRODUCT_ID
    for item in line_items:
        product = (item.get("price") or {}).get("product")
        product_id = object_id(product)
        if (vip_product_id and product_id == vip_product_id) or product_is_modready(
            product_id, product if isinstance(product, dict) else product_lookup(product_id)
        ):
            product_ids.append(product_id)
    if not product_ids:
        return False
    details = stripe_session.get("customer_details") or {}
    email = (details.get("email") or stripe_session.get("customer_email") or "").strip()
    stripe_customer_id = object_id(stripe_session.get("customer"))
    if not email and not stripe_customer_id:
        raise MissingCustomerEmail(f"Checkout session {stripe_session['id']} has neither email nor customer")
    fields = {"name": details["name"]} if details.get("name") else {}
    customer, _ = customer_upsert(email=email, stripe_customer_id=stripe_customer_id, **fields)
    session_id = stripe_session["id"]
    amount_total = int(stripe_session.get("amount_total") or 0)
    currency = (stripe_session.get("currency") or "").lower()
    return fact_record(
        customer=customer,
        # The completed event of a delayed payment says unpaid; the later async_payment_succeeded is its own fact.
        key=f"checkout-session:{session_id}:completed"
        if stripe_event_type == "checkout.session.completed"
        else f"checkout-session:{session_id}:async-payment-succeeded",
        kind="checkout.completed",
        summary=f"Checkout completed: {amount_total / 100:.2f} {currency.upper()} ({stripe_session.get('mode')}, "
        f"{stripe_session.get('payment_status') or 'unknown'})",
        occurred_at=occurred_at or timestamp_to_datetime(stripe_session.get("created")) or timezone.now(),
        object_type="stripe.checkout_session",
        object_id_=session_id,
        domain_event=events.CHECKOUT_COMPLETED,
        payload={
            "session_id": session_id,
            "mode": stripe_session.get("mode") or "",
            "payment_status": stripe_session.get("payment_status") or "",
            "product_ids": product_ids,
            "amount_total": amount_total,
            "currency": currency,
            "customer_email": email,
            "stripe_event_type": stripe_event_type,
        },
    )
