"""charge.dispute.created: a dispute opened against a known customer's charge."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from customers import events
from customers.lifecycle import Stage
from customers.models import Customer

from ..stripe_objects import object_id, timestamp_to_datetime
from .facts import fact_record


@transaction.atomic
def dispute_opened_record(
    *, stripe_dispute: dict, stripe_customer_id: str, occurred_at: datetime | None = None
) -> bool:
    """charge.dispute.created: https://docs.stripe.com/api/disputes/object. Counts only for customers the CRM
    knows from a ModReady subscription or checkout (a dispute names a charge, not a product)."""
    customer = Customer.objects.filter(stripe_customer_id=stripe_customer_id).first() if stripe_customer_id else None
    if customer is None:
        return False
    dispute_id = stripe_dispute["id"]
    amount = int(stripe_dispute.get("amount") or 0)
    currency = (stripe_dispute.get("currency") or "").lower()
    reason = stripe_dispute.get("reason") or ""
    return fact_record(
        customer=customer,
        key=f"dispute:{dispute_id}:opened",
        kind="dispute.opened",
        summary=f"Dispute opened: {amount / 100:.2f} {currency.upper()} ({reason})",
        occurred_at=timestamp_to_datetime(stripe_dispute.get("created")) or occurred_at or timezone.now(),
        object_type="stripe.dispute",
        object_id_=dispute_id,
        domain_event=events.DISPUTE_OPENED,
        payload={
            "dispute_id": dispute_id,
            "charge_id": object_id(stripe_dispute.get("charge")),
            "amount": amount,
            "currency": currency,
            "reason": reason,
        },
        to_stage=Stage.AT_RISK,
    )
