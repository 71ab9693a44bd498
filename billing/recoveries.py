"""Payment recoveries (PaymentRecovery), the dashboard's "recovered by dunning": kept as each recovery is recorded,
and rebuilt from the timeline by the same statement, so the kept rows and the rebuilt ones cannot differ.

A recovery is a payment.recovered fact of an invoice whose payment.failed facts the CRM recorded: first_failed_at is
the first failure, the amount, currency and subscription are the last failed attempt's (what Stripe last asked for).
A recovery from a failure recorded before the CRM existed has no amount and no dunning to credit: no row.
"""

from django.db import connection, transaction

from .models import PaymentRecovery

_FROM_TIMELINE = """
INSERT INTO billing_paymentrecovery (customer_id, invoice_id, subscription_id, first_failed_at, recovered_at, amount,
    currency)
SELECT DISTINCT ON (recovered.object_id) recovered.customer_id, recovered.object_id,
    coalesce(last_failure.payload->>'subscription_id', ''), first_failure.occurred_at, recovered.occurred_at,
    coalesce((last_failure.payload->>'amount_due')::bigint, 0), upper(coalesce(last_failure.payload->>'currency', ''))
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


def payment_recovery_record(*, invoice_id: str) -> None:
    """The invoice's recovery, once its payment.recovered fact is on the timeline (in the same transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(_FROM_TIMELINE, {"invoice_id": invoice_id})


def payment_recoveries_rebuild() -> int:
    """Recompute every recovery from the timeline, in one transaction. Returns the number of rows."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE billing_paymentrecovery IN EXCLUSIVE MODE")
        cursor.execute("DELETE FROM billing_paymentrecovery")
        cursor.execute(_FROM_TIMELINE, {"invoice_id": None})
    return PaymentRecovery.objects.count()
