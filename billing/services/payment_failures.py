"""The failed invoice's own row (PaymentFailure): its latest decline, Stripe's next retry, its dunning holdout group,
and its recovery. Written in the transaction of the payment.failed / payment.recovered fact (services/invoices.py).

The dunning holdout: with DUNNING_HOLDOUT_PERCENT above 0, that share of failed invoices is put in the holdout at
their first failure, chosen by a stable hash of the invoice id (the same invoice always lands in the same group, on
every attempt, on every server, whatever the order events arrive in). The group is kept on the row, so changing the
setting later does not move an invoice already in the experiment; the payment.failed payload carries
`dunning_holdout`, and automations sends no dunning email for it (automations/services/enrollment_policy.py) while
Stripe's own retries go on as usual.
"""

import hashlib
from datetime import datetime

from django.conf import settings

from ..declines import Decline
from ..models import DunningGroup, PaymentFailure

HASH_BUCKETS = 10_000


def holdout_bucket(invoice_id: str) -> float:
    """Where the invoice falls in [0, 100): the first 8 bytes of SHA-256 of its id, uniform and stable."""
    digest = hashlib.sha256(f"dunning-holdout:{invoice_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % HASH_BUCKETS * 100 / HASH_BUCKETS


def dunning_group_for(invoice_id: str, *, percent: int | None = None) -> str:
    """The group a newly failed invoice joins: "" while the holdout is off, else "holdout" or "emails"."""
    percent = settings.DUNNING_HOLDOUT_PERCENT if percent is None else percent
    if percent <= 0:
        return DunningGroup.NONE
    return DunningGroup.HOLDOUT if holdout_bucket(invoice_id) < min(percent, 100) else DunningGroup.EMAILS


def payment_failure_record(
    *,
    customer,
    invoice_id: str,
    subscription_id: str,
    attempt_count: int,
    occurred_at: datetime,
    next_payment_attempt: datetime | None,
    amount_due: int,
    currency: str,
    hosted_invoice_url: str,
    decline: Decline | None,
) -> PaymentFailure:
    """Create or update the invoice's row for one failed attempt (the caller holds the subscription's lock). An older
    attempt arriving late does not overwrite a newer one; an attempt without a known decline keeps the one known."""
    failure, created = PaymentFailure.objects.select_for_update().get_or_create(
        invoice_id=invoice_id,
        defaults={
            "customer": customer,
            "subscription_id": subscription_id,
            "first_failed_at": occurred_at,
            "last_failed_at": occurred_at,
            "attempt_count": attempt_count,
            "decline_kind": decline.kind if decline else "",
            "decline_code": decline.code if decline else "",
            "next_payment_attempt": next_payment_attempt,
            "amount_due": amount_due,
            "currency": currency,
            "hosted_invoice_url": hosted_invoice_url,
            "dunning_group": dunning_group_for(invoice_id),
        },
    )
    if created:
        return failure
    failure.first_failed_at = min(failure.first_failed_at, occurred_at)
    if attempt_count >= failure.attempt_count:
        failure.attempt_count = attempt_count
        failure.last_failed_at = max(failure.last_failed_at, occurred_at)
        failure.next_payment_attempt = next_payment_attempt
        failure.amount_due, failure.currency = amount_due, currency
        failure.hosted_invoice_url = hosted_invoice_url or failure.hosted_invoice_url
        if decline and decline.kind:
            failure.decline_kind, failure.decline_code = decline.kind, decline.code
    failure.save()
    return failure


def payment_failure_recovered(*, invoice_id: str, recovered_at: datetime) -> None:
    PaymentFailure.objects.filter(invoice_id=invoice_id, recovered_at__isnull=True).update(
        recovered_at=recovered_at, next_payment_attempt=None
    )
