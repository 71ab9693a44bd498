"""Who may send, and when: sending paused by a configuration error, and coalesced drain wake-ups.

- A `SendingPause` row stops every worker from claiming emails after the provider refused our key, domain or quota
  (401/403); one worker at a time probes, and a success (or staff) lifts it. No email fails for it.
- `queue_process_enqueue` asks for a drain through `drain_wake_claim`: one queued drain task at most, whatever the
  burst; running drains hold one of AUTOMATIONS_DRAIN_SLOTS leases with a heartbeat (automations.drain_leases).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from integrations.email_transport import SendError

from .models import QueueWake, SendingPause

logger = logging.getLogger(__name__)


# --- pausing on a configuration error ----------------------------------------------------------------------------


def sending_pause(*, provider: str, error: SendError) -> SendingPause:
    """Pause sending for every worker (a row they all read), or push back the next probe of a pause that holds."""
    now = timezone.now()
    fields = {
        "cause": (error.pause_cause or str(error))[:300],
        "status_code": error.status,
        "error_name": error.name[:100],
        "next_probe_at": now + timedelta(seconds=settings.AUTOMATIONS_PAUSE_PROBE_SECONDS),
    }
    pause, created = SendingPause.objects.get_or_create(provider=provider, defaults={**fields, "paused_at": now})
    if created:
        logger.error("Sending through %s paused: %s", provider, pause.cause)
    else:
        SendingPause.objects.filter(pk=pause.pk).update(**fields)
        for name, value in fields.items():
            setattr(pause, name, value)
    return pause


def sending_pause_get(*, provider: str) -> SendingPause | None:
    return SendingPause.objects.filter(provider=provider).first() if provider else None


def probe_claim(*, provider: str) -> bool:
    """The one worker whose turn it is to try a call while sending is paused (others keep waiting)."""
    now = timezone.now()
    return bool(
        SendingPause.objects.filter(provider=provider, next_probe_at__lte=now).update(
            next_probe_at=now + timedelta(seconds=settings.AUTOMATIONS_PAUSE_PROBE_SECONDS), probes=F("probes") + 1
        )
    )


def sending_resume(*, provider: str, by: str) -> bool:
    """Lift a pause (a probe call went through, or staff resumed it). Returns whether there was one."""
    deleted, _ = SendingPause.objects.filter(provider=provider).delete()
    if deleted:
        logger.warning("Sending through %s resumed (%s)", provider, by)
        transaction.on_commit(queue_process_enqueue)
    return bool(deleted)


# --- coalesced wake-ups ------------------------------------------------------------------------------------------

DRAIN_WAKE_NAME = "email-drain"
# A wake-up that has not started after this long (its task went to a cluster that was killed, or whose workers are
# all busy) stops blocking new ones: a dead drain must be replaced within seconds, and a spare drain task that finds
# every slot held ends at once.
DRAIN_WAKE_STALE_SECONDS = 15


def drain_wake_claim() -> bool:
    """Whether the caller should enqueue a drain task: False while one is already queued and not yet started.

    One row, one statement: a burst of a thousand enrollments puts one task on the broker, not a thousand.
    """
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {QueueWake._meta.db_table} AS wake (name, enqueued_at) VALUES (%s, now())"  # noqa: S608
            " ON CONFLICT (name) DO UPDATE SET enqueued_at = EXCLUDED.enqueued_at"
            " WHERE wake.enqueued_at IS NULL OR wake.enqueued_at < now() - make_interval(secs => %s)"
            " RETURNING 1",
            [DRAIN_WAKE_NAME, DRAIN_WAKE_STALE_SECONDS],
        )
        return cursor.fetchone() is not None


def drain_wake_clear() -> None:
    """A woken drain has started: the next wake-up may queue another (for the next free slot)."""
    QueueWake.objects.filter(name=DRAIN_WAKE_NAME).update(enqueued_at=None)


def queue_process_enqueue() -> None:
    """Ask the task queue to drain due emails now (side effect: call only from on_commit or outside transactions).

    Coalesced: while one drain task is queued and not yet started, asking again adds nothing to the broker; running
    drains are limited to AUTOMATIONS_DRAIN_SLOTS and keep going while emails are due (automations.drain, drain_leases).
    """
    from django_q.tasks import async_task

    if drain_wake_claim():
        async_task(
            "automations.tasks.email_queue_process_task", woken=True, task_name="automations:process-email-queue"
        )
