"""Storing a verified Stripe delivery, through the ORM only: dj-stripe's WebhookEventTrigger keeps every delivery,
StripeEventProcessing one row per event id (the unique `event_id` makes a duplicate a no-op, even one racing the
first on another worker: the second insert waits on the unique index, fails, and counts itself on the stored row).
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from djstripe import models as djstripe_models

from ..models import EventProcessingStatus, StripeEventProcessing
from ..stripe_objects import event_stripe_customer_id, timestamp_to_datetime

# A lost enqueue (a crash between commit and enqueue) is picked up by the retry schedule after this long.
PENDING_GRACE = timedelta(minutes=5)


def stripe_event_receive(
    *, body: str, event: dict, headers: dict, remote_ip: str, endpoint: djstripe_models.WebhookEndpoint
) -> tuple[str, bool]:
    """Store one verified delivery durably and enqueue its processing after commit (only the first delivery of an
    event id, or a redelivery of one whose processing failed). Returns (event id, first delivery)."""
    inserted, status = stripe_delivery_store(
        body=body, event=event, headers=headers, remote_ip=remote_ip, endpoint=endpoint
    )
    if inserted or status == EventProcessingStatus.FAILED:
        event_id = event["id"]
        transaction.on_commit(lambda: stripe_event_enqueue(event_id=event_id))
    return event["id"], inserted


@transaction.atomic
def stripe_delivery_store(
    *, body: str, event: dict, headers: dict, remote_ip: str, endpoint: djstripe_models.WebhookEndpoint
) -> tuple[bool, str]:
    """The delivery (always) and the event's processing row (once per event id). Returns (inserted, status).

    Insert first, in a savepoint: the first delivery (nearly all of them) costs one statement, not get_or_create's
    look-up and insert; a duplicate meets the unique event id, rolls back only the savepoint, and counts itself."""
    trigger = djstripe_models.WebhookEventTrigger.objects.create(
        remote_ip=remote_ip, headers=headers, body=body, valid=True, webhook_endpoint=endpoint
    )
    try:
        with transaction.atomic():
            processing = StripeEventProcessing.objects.create(
                event_id=event["id"],
                event_type=str(event.get("type", ""))[:128],
                event_created=timestamp_to_datetime(event.get("created")),
                stripe_customer_id=event_stripe_customer_id(event),
                trigger=trigger,
                next_attempt_at=timezone.now() + PENDING_GRACE,
            )
        return True, processing.status
    except IntegrityError:
        stored = StripeEventProcessing.objects.filter(event_id=event["id"])
        stored.update(deliveries=F("deliveries") + 1)
        return False, stored.values_list("status", flat=True).get()


_broker: list = []


def stripe_event_enqueue(*, event_id: str) -> None:
    from django_q.brokers import get_broker
    from django_q.tasks import async_task

    if not _broker:
        _broker.append(get_broker())  # one per process, not one per delivery

    def enqueue() -> None:
        async_task(
            "billing.tasks.stripe_event_process_task",
            event_id,
            task_name=f"stripe-event:{event_id}",
            broker=_broker[0],
        )

    if settings.Q_CLUSTER.get("sync") or not settings.Q_CLUSTER.get("orm") or connection.vendor != "postgresql":
        enqueue()
        return
    with transaction.atomic():
        # With the ORM broker the enqueue is a second commit on the ack path. It need not wait for its WAL flush:
        # the delivery itself was committed durably before, and a wake-up lost in a crash is found by the retry
        # schedule (stripe_events_due picks pending rows after PENDING_GRACE).
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        enqueue()


@transaction.atomic
def stripe_event_reprocess(*, event_id: str) -> bool:
    """From the admin: run an event's processing again (a failed, given-up or even processed one). Everything it
    records is keyed, so a second run changes nothing that the first already did."""
    updated = StripeEventProcessing.objects.filter(event_id=event_id).update(
        status=EventProcessingStatus.PENDING, next_attempt_at=timezone.now() + PENDING_GRACE
    )
    if updated:
        transaction.on_commit(lambda: stripe_event_enqueue(event_id=event_id))
    return bool(updated)
