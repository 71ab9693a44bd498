"""Payment recoveries (PaymentRecovery), the dashboard's "recovered by dunning": kept as each recovery is recorded,
and rebuilt from the timeline by the same statement, so the kept rows and the rebuilt ones cannot differ.

A recovery is a payment.recovered fact of an invoice whose payment.failed facts the CRM recorded: first_failed_at is
the first failure, the amount, currency and subscription are the last failed attempt's (what Stripe last asked for).
A recovery from a failure recorded before the CRM existed has no amount and no dunning to credit: no row.
"After dunning" is decided when the recovery is recorded: a dunning email sent between the first failure and the
payment (the emails are automations', read through its selector).
"""

from collections import defaultdict

from django.db import connection, transaction

from .models import PaymentRecovery

_FROM_TIMELINE = """
INSERT INTO billing_paymentrecovery (customer_id, invoice_id, subscription_id, first_failed_at, recovered_at, amount,
    currency, after_dunning)
SELECT DISTINCT ON (recovered.object_id) recovered.customer_id, recovered.object_id,
    coalesce(last_failure.payload->>'subscription_id', ''), first_failure.occurred_at, recovered.occurred_at,
    coalesce((last_failure.payload->>'amount_due')::bigint, 0), upper(coalesce(last_failure.payload->>'currency', '')),
    false
FROM customers_timelineevent AS recovered
CROSS JOIN LATERAL (
    SELECT occurred_at FROM customers_timelineevent AS failure
    WHERE failure.kind = 'payment.failed' AND failure.customer_id = recovered.customer_id
        AND failure.object_id = recovered.object_id
    ORDER BY failure.occurred_at, failure.id LIMIT 1
) AS first_failure
CROSS JOIN LATERAL (
    SELECT payload FROM customers_timelineevent AS failure
    WHERE failure.kind = 'payment.failed' AND failure.customer_id = recovered.customer_id
        AND failure.object_id = recovered.object_id
    ORDER BY failure.occurred_at DESC, failure.id DESC LIMIT 1
) AS last_failure
WHERE recovered.kind = 'payment.recovered' AND (%(invoice_id)s::text IS NULL OR recovered.object_id = %(invoice_id)s)
ORDER BY recovered.object_id, recovered.occurred_at, recovered.id
ON CONFLICT (invoice_id) DO NOTHING
"""


def _credit_dunning(recoveries: list[PaymentRecovery]) -> None:
    """Mark the recoveries that had a dunning email (automations' selector: a sent email of a rule started by a failed
    payment) between their first failure and the payment, for the same subscription when the enrollment names one.
    One query for all of them."""
    from automations import selectors as automations_selectors  # automations reads billing: imported when used

    if not recoveries:
        return
    sends: dict[int, list[dict]] = defaultdict(list)
    customer_ids = {recovery.customer_id for recovery in recoveries}
    earliest = min(recovery.first_failed_at for recovery in recoveries)
    for send in automations_selectors.dunning_sends(customer_ids=customer_ids, since=earliest):
        sends[send["customer_id"]].append(send)
    credited = [
        recovery.pk
        for recovery in recoveries
        if any(
            recovery.first_failed_at <= send["sent_at"] <= recovery.recovered_at
            and (not send["subscription_id"] or send["subscription_id"] == recovery.subscription_id)
            for send in sends[recovery.customer_id]
        )
    ]
    PaymentRecovery.objects.filter(pk__in=credited).update(after_dunning=True)


def payment_recovery_record(*, invoice_id: str) -> None:
    """The invoice's recovery, once its payment.recovered fact is on the timeline (in the same transaction), credited
    to dunning when a dunning email went out before the payment (every such email has been sent by then)."""
    with connection.cursor() as cursor:
        cursor.execute(_FROM_TIMELINE + " RETURNING id", {"invoice_id": invoice_id})
        new = [row[0] for row in cursor.fetchall()]
    _credit_dunning(list(PaymentRecovery.objects.filter(pk__in=new)))


def payment_recoveries_rebuild() -> int:
    """Recompute every recovery from the timeline and the dunning emails, in one transaction. Returns the number of
    rows."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE billing_paymentrecovery IN EXCLUSIVE MODE")
            cursor.execute("DELETE FROM billing_paymentrecovery")
            cursor.execute(_FROM_TIMELINE, {"invoice_id": None})
        recoveries = list(PaymentRecovery.objects.all())
        _credit_dunning(recoveries)
    return len(recoveries)
