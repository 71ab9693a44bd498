"""Payment recoveries (PaymentRecovery), the dashboard's "recovered by dunning": kept as each recovery is recorded,
and rebuilt from the timeline by the same code, so the kept rows and the rebuilt ones cannot differ.

A recovery is a payment.recovered fact of an invoice whose payment.failed facts the CRM recorded: first_failed_at is
the first failure, the amount, currency and subscription are the last failed attempt's (what Stripe last asked for).
A recovery from a failure recorded before the CRM existed has no amount and no dunning to credit: no row.
"After dunning" is decided when the recovery is recorded: a dunning email sent between the first failure and the
payment. The emails are automations', and billing does not import automations (it sits below it): automations tells
billing about its dunning emails by registering a source at start (`dunning_sends_source`, in automations/apps.py),
as the domain events' subscribers register themselves. With no source registered nothing is credited to dunning.
"""

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from django.db import transaction

from customers.models import TimelineEvent
from customers.rollups import lock_for_rebuild

from .models import PaymentRecovery

PAYMENT_FAILED = "payment.failed"  # the timeline kinds billing.services records for invoices
PAYMENT_RECOVERED = "payment.recovered"

# A source of dunning emails: (customer_ids=..., since=...) -> [{"customer_id", "sent_at", "subscription_id"}, ...],
# the dunning emails sent to those customers since then ("" as subscription_id when the enrollment names none).
DunningSends = Callable[..., list[dict]]
_dunning_sources: list[DunningSends] = []


def dunning_sends_source(source: DunningSends) -> DunningSends:
    """Register a source of dunning emails (the app that sends them, at start). Registering it again adds nothing."""
    if source not in _dunning_sources:
        _dunning_sources.append(source)
    return source


def _dunning_sends(*, customer_ids: set[int], since: datetime) -> list[dict]:
    return [send for source in _dunning_sources for send in source(customer_ids=customer_ids, since=since)]


def _recoveries(timeline) -> list[PaymentRecovery]:
    """Recovery rows from the payment facts of `timeline` (a TimelineEvent queryset): two queries."""
    recovered = (
        timeline.filter(kind=PAYMENT_RECOVERED)
        .order_by("occurred_at", "id")
        .values("customer_id", "object_id", "occurred_at")
    )
    failures = (
        timeline.filter(kind=PAYMENT_FAILED)
        .order_by("occurred_at", "id")
        .values("customer_id", "object_id", "occurred_at", "payload")
    )
    first: dict[tuple[int, str], object] = {}
    last: dict[tuple[int, str], dict] = {}
    for failure in failures:
        key = (failure["customer_id"], failure["object_id"])
        first.setdefault(key, failure["occurred_at"])
        last[key] = failure["payload"]
    rows: dict[str, PaymentRecovery] = {}
    for row in recovered:
        key = (row["customer_id"], row["object_id"])
        if key not in first or row["object_id"] in rows:
            continue  # no recorded failure (see above), or a second fact of the same invoice: the first counts
        payload = last[key]
        rows[row["object_id"]] = PaymentRecovery(
            customer_id=row["customer_id"],
            invoice_id=row["object_id"],
            subscription_id=payload.get("subscription_id") or "",
            first_failed_at=first[key],
            recovered_at=row["occurred_at"],
            amount=int(payload.get("amount_due") or 0),
            currency=(payload.get("currency") or "").upper(),
        )
    return list(rows.values())


def _credit_dunning(recoveries: list[PaymentRecovery]) -> None:
    """Set after_dunning on the recoveries that had a dunning email (from the registered sources; automations': a
    sent email of a rule started by a failed payment) between their first failure and the payment, for the same
    subscription when the enrollment names one. One query per source for all of them."""
    if not recoveries:
        return
    sends: dict[int, list[dict]] = defaultdict(list)
    customer_ids = {recovery.customer_id for recovery in recoveries}
    earliest = min(recovery.first_failed_at for recovery in recoveries)
    for send in _dunning_sends(customer_ids=customer_ids, since=earliest):
        sends[send["customer_id"]].append(send)
    for recovery in recoveries:
        recovery.after_dunning = any(
            recovery.first_failed_at <= send["sent_at"] <= recovery.recovered_at
            and (not send["subscription_id"] or send["subscription_id"] == recovery.subscription_id)
            for send in sends[recovery.customer_id]
        )


def payment_recovery_record(*, customer_id: int, invoice_id: str) -> None:
    """The invoice's recovery, once its payment.recovered fact is on the timeline (in the same transaction), credited
    to dunning when a dunning email went out before the payment (every such email has been sent by then). Recording
    it again changes nothing."""
    if PaymentRecovery.objects.filter(invoice_id=invoice_id).exists():
        return
    recoveries = _recoveries(TimelineEvent.objects.filter(customer_id=customer_id, object_id=invoice_id))
    _credit_dunning(recoveries)
    PaymentRecovery.objects.bulk_create(recoveries, ignore_conflicts=True)


@transaction.atomic
def payment_recoveries_rebuild() -> int:
    """Recompute every recovery from the timeline and the dunning emails. Returns the number of rows."""
    lock_for_rebuild(PaymentRecovery)
    recoveries = _recoveries(TimelineEvent.objects.all())
    _credit_dunning(recoveries)
    PaymentRecovery.objects.all().delete()
    PaymentRecovery.objects.bulk_create(recoveries, batch_size=1000)
    return len(recoveries)
