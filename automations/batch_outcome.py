"""Making a claimed batch's call and recording what its answer proves (docs/automations.md, "Which answer means what").

- An answer that does not say whether the provider sent the batch (timeout, dropped connection, any 5xx, 409
  concurrent_idempotent_requests, a worker that died mid-call) makes the batch immutable: it is re-sent byte for
  byte under its key until the provider answers, never split, trimmed or re-keyed. If no answer comes within
  AUTOMATIONS_RETRY_WINDOW_SECONDS of the first call (providers forget keys, after 24 h for some), its emails become
  `unconfirmed` and are never sent again by the queue.
- Rate limited: the batch waits for retry_after and the whole drain pauses that long. Refused (validation refused the
  whole call, nothing was sent): a batch of several is split in two; a single email fails. Configuration (key,
  domain, quota): sending pauses for every worker (`SendingPause`), emails stay queued, probes resume it.
  Key conflict: our bug; logged as an error, shown in the admin, never re-sent under a new key.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Value, When
from django.utils import timezone

from core.retry import backoff_seconds
from customers.services import timeline_events_record_many
from integrations.email_transport import EmailTransport, SendError, SendErrorKind

from .batch_claim import DrainResult, batch_create
from .drain_control import sending_pause
from .models import (
    BatchStatus,
    EmailBatch,
    EmailQueueItem,
    EnrollmentStatus,
    QueueStatus,
    SendingPause,
)
from .pacing import provider_slot_hold
from .services.campaigns import campaign_stage_on_sent
from .services.tracking import email_events_link_unmatched

logger = logging.getLogger(__name__)


DEFAULT_RATE_LIMIT_WAIT = 1.0


def batch_send(*, batch: EmailBatch, transport: EmailTransport, result: DrainResult, worker: str = "") -> float:
    """Make the provider call for a claimed batch and record the outcome. Returns seconds the drain should pause."""
    messages = [entry["message"] for entry in batch.messages]
    try:
        message_ids = transport.send_batch(messages=messages, idempotency_key=batch.provider_idempotency_key)
    except SendError as exc:
        return batch_record_failure(
            batch=batch, error=exc, result=result, worker=worker or batch.worker, provider=transport.provider
        )
    batch_record_sent(batch=batch, message_ids=message_ids, result=result, provider=transport.provider)
    return 0.0


@transaction.atomic
def batch_record_sent(*, batch: EmailBatch, message_ids: list[str], result: DrainResult, provider: str = "") -> None:
    batch = EmailBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != BatchStatus.SENDING:
        return  # another worker took over this batch after our lease ran out and recorded it first
    now = timezone.now()
    batch.status, batch.sent_at, batch.last_error, batch.call_in_progress = BatchStatus.SENT, now, "", False
    batch.error_name = ""
    batch.save(update_fields=["status", "sent_at", "last_error", "call_in_progress", "error_name"])
    ids_by_item = {entry["item_id"]: message_id for entry, message_id in zip(batch.messages, message_ids, strict=True)}
    items = list(
        EmailQueueItem.objects.filter(pk__in=ids_by_item, status=QueueStatus.SENDING).select_related(
            "step__template", "step__rule"
        )
    )
    for item in items:
        item.provider_message_id = ids_by_item[item.pk]
        result.touched_enrollments.add(item.enrollment_id)
    _items_mark_sent(items, now=now)
    # A sequence that ended while the provider may already have had its email (a cancel during a retry's backoff): the
    # email went out, and says so next to the wish to cancel it.
    EmailQueueItem.objects.filter(
        pk__in=[item.pk for item in items], enrollment__status=EnrollmentStatus.EXITED
    ).update(
        last_error="Sent although its sequence ended meanwhile: it was in a call the provider may already have "
        "accepted, which is never changed"
    )
    subjects = {entry["item_id"]: entry["message"]["subject"] for entry in batch.messages}
    timeline_events_record_many(
        events=[
            {
                "customer_id": item.customer_id,
                "source": "email",
                "source_key": f"{item.idempotency_key}:sent",
                "kind": "email.sent",
                "occurred_at": now,
                "summary": f"Sent {item.step.template.name}: {subjects[item.pk]}",
                "payload": {"queue_item_id": item.pk, "provider_message_id": item.provider_message_id},
                "object_type": "email.queue_item",
                "object_id": str(item.pk),
            }
            for item in items
        ]
    )
    # A re-engagement campaign that reached a churned customer moves them to Win-back (customers/lifecycle.py).
    campaign_stage_on_sent(items=items, sent_at=now)
    result.sent += len(items)
    result.batches += 1
    # The provider can report "delivered" before we have stored the message id; those events wait unlinked until now.
    email_events_link_unmatched(provider_message_ids=list(ids_by_item.values()), provider=provider)


def _items_mark_sent(items: list[EmailQueueItem], *, now) -> None:
    """One UPDATE for a whole batch, each email with its own provider message id."""
    if not items:
        return
    if connection.vendor == "postgresql":
        values = ", ".join(["(%s::bigint, %s)"] * len(items))
        params = [value for item in items for value in (item.pk, item.provider_message_id)]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {EmailQueueItem._meta.db_table} AS item"  # noqa: S608 - only placeholders are interpolated
                " SET status = %s, provider_message_id = v.message_id, sent_at = %s, last_error = '', updated_at = %s"
                f" FROM (VALUES {values}) AS v(id, message_id) WHERE item.id = v.id",
                [QueueStatus.SENT, now, now, *params],
            )
        return
    EmailQueueItem.objects.filter(pk__in=[item.pk for item in items]).update(
        status=QueueStatus.SENT,
        sent_at=now,
        last_error="",
        updated_at=now,
        provider_message_id=Case(*[When(pk=item.pk, then=Value(item.provider_message_id)) for item in items]),
    )


BATCH_STATE_FIELDS = [
    "last_error",
    "error_name",
    "call_in_progress",
    "possibly_accepted",
    "lease_expires_at",
    "next_attempt_at",
    "attempts",
]


@transaction.atomic
def batch_record_failure(
    *, batch: EmailBatch, error: SendError, result: DrainResult, worker: str, provider: str = ""
) -> float:
    """Record an error answer according to what it proves (docs/automations.md, "Which answer means what")."""
    batch = EmailBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != BatchStatus.SENDING or batch.worker != worker:
        # Sent meanwhile, or our lease ran out and another worker has taken the batch (and may be calling now):
        # its outcome, not ours, decides. A success is always recorded (batch_record_sent), whoever made the call.
        return 0.0
    now = timezone.now()
    message = str(error)[:2000]
    outcome = error.kind
    batch.last_error = message
    batch.error_name = error.name[:100]
    batch.call_in_progress = False
    if outcome == SendErrorKind.RATE_LIMITED:
        wait = error.retry_after if error.retry_after is not None else DEFAULT_RATE_LIMIT_WAIT
        batch.lease_expires_at = batch.next_attempt_at = now + timedelta(seconds=wait)
        batch.save(update_fields=BATCH_STATE_FIELDS)
        # The limit is the team's, not this sender's: every sender of every drain waits it out.
        provider_slot_hold(provider=provider or error.provider or "email", seconds=wait)
        result.rate_limited += 1
        return wait
    if outcome == SendErrorKind.UNKNOWN:
        return _batch_retry_unchanged(batch, message=message, now=now, result=result)
    if outcome == SendErrorKind.KEY_CONFLICT:
        logger.error(
            "The provider refused batch %s's idempotency key (%s): the payload stored for the key changed, which "
            "the queue must never do. The batch is not re-sent under a new key; check the provider's log for what "
            "went out.",
            batch.idempotency_key,
            error.name,
        )
        _batch_unconfirmed(
            batch,
            message=f"Idempotency key refused ({error.name}): a bug on our side; not re-sent under a new key. "
            f"Check the provider's log for whether it went out. {message}",
            result=result,
        )
        return 0.0
    if outcome == SendErrorKind.CONFIGURATION:
        # A transport without an account ("" provider) has nothing a drain would read the pause of.
        pause = sending_pause(provider=provider or error.provider or "email", error=error)
        result.paused = pause.cause
        _batch_hold_for_pause(batch, pause=pause, now=now)
        return 0.0
    # Validation refused the whole call: nothing was sent, so the batch may be split under new keys.
    if len(batch.messages) > 1:
        _batch_split(batch, message=message, now=now)
        result.splits += 1
        return 0.0
    _batch_fail(batch, message=message, result=result)
    return 0.0


def _batch_retry_unchanged(batch: EmailBatch, *, message: str, now, result: DrainResult) -> float:
    """The provider may have sent it: only the same stored payload under the same key may follow, until it answers."""
    batch.possibly_accepted = True
    batch.attempts += 1
    give_up_at = (batch.first_called_at or now) + timedelta(seconds=settings.AUTOMATIONS_RETRY_WINDOW_SECONDS)
    if now >= give_up_at:
        logger.error("Batch %s: no answer from the provider within its idempotency window", batch.idempotency_key)
        _batch_unconfirmed(
            batch,
            message="No definitive answer from the provider within "
            f"{settings.AUTOMATIONS_RETRY_WINDOW_SECONDS // 3600} h of the first call ({batch.attempts} attempts); "
            "it may have been delivered, and is not sent again "
            f"(the provider forgets the key after its window). Last: {message}",
            result=result,
        )
        return 0.0
    backoff = backoff_seconds(
        batch.attempts, base=settings.AUTOMATIONS_RETRY_BASE_SECONDS, cap=settings.AUTOMATIONS_RETRY_MAX_SECONDS
    )
    batch.lease_expires_at = batch.next_attempt_at = min(now + timedelta(seconds=backoff), give_up_at)
    batch.save(update_fields=BATCH_STATE_FIELDS)
    batch.items.update(last_error=message, attempts=batch.attempts, updated_at=now)
    result.retries += 1
    return 0.0


def _batch_unconfirmed(batch: EmailBatch, *, message: str, result: DrainResult) -> None:
    now = timezone.now()
    batch.status = BatchStatus.UNCONFIRMED
    batch.last_error = message[:2000]
    batch.save(update_fields=["status", *BATCH_STATE_FIELDS])
    result.unconfirmed += batch.items.filter(status=QueueStatus.SENDING).update(
        status=QueueStatus.UNCONFIRMED, last_error=message[:2000], updated_at=now
    )
    result.touched_enrollments.update(batch.items.values_list("enrollment_id", flat=True))


def _batch_hold_for_pause(batch: EmailBatch, *, pause: SendingPause, now) -> None:
    """Our configuration refused the call, so nothing was sent: no email fails. A batch the provider may have
    accepted earlier stays as it is until a probe; any other goes back to the queue, its emails pending as before."""
    held = f"Waiting: sending is paused ({pause.cause})"[:2000]
    if batch.possibly_accepted:
        batch.lease_expires_at = batch.next_attempt_at = pause.next_probe_at
        batch.save(update_fields=BATCH_STATE_FIELDS)
        batch.items.update(last_error=held, updated_at=now)
        return
    batch.status = BatchStatus.RELEASED
    batch.save(update_fields=["status", *BATCH_STATE_FIELDS])
    batch.items.filter(status=QueueStatus.SENDING).update(
        status=QueueStatus.PENDING, batch=None, last_error=held, next_attempt_at=now, updated_at=now
    )


def _batch_fail(batch: EmailBatch, *, message: str, result: DrainResult) -> None:
    now = timezone.now()
    batch.status = BatchStatus.FAILED
    batch.last_error = message[:2000]
    batch.save(update_fields=["status", *BATCH_STATE_FIELDS])
    result.failed += batch.items.filter(status=QueueStatus.SENDING).update(
        status=QueueStatus.FAILED, last_error=message[:2000], updated_at=now
    )
    result.touched_enrollments.update(batch.items.values_list("enrollment_id", flat=True))


def _batch_split(batch: EmailBatch, *, message: str, now) -> None:
    """Validation refused the whole batch for one bad email (nothing was sent): each half goes on its own, under new
    keys. Only ever on such a refusal: a batch the provider may have accepted is never split."""
    batch.status = BatchStatus.SPLIT
    batch.save(update_fields=["status", *BATCH_STATE_FIELDS])
    middle = len(batch.messages) // 2
    for half in (batch.messages[:middle], batch.messages[middle:]):
        item_ids = [entry["item_id"] for entry in half]
        items = {item.pk: item for item in EmailQueueItem.objects.filter(pk__in=item_ids)}
        child = batch_create([(items[entry["item_id"]], entry["message"]) for entry in half], worker="", now=now)
        child.lease_expires_at = now
        child.save(update_fields=["lease_expires_at"])
        EmailQueueItem.objects.filter(pk__in=item_ids).update(batch=child, last_error=message, updated_at=now)
