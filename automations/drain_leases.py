"""Leases on the send pipeline's work: the drains that may run at once, and the batches they are calling for.

- A drain task runs only while it holds one of AUTOMATIONS_DRAIN_SLOTS `DrainLease` rows (`drain_lease_take`: a slot
  that is free or whose lease ran out). Its heartbeat (`drain_lease_kept`, core/leases.py) renews, every third of
  AUTOMATIONS_LEASE_SECONDS and in two statements, the slot and the lease of every batch its senders are calling for;
  on each beat it also wakes another drain when a slot is vacant while emails are due. So a SIGKILLed drain is
  replaced within about one lease (its slot runs out, a live drain's next beat enqueues a drain, a cluster polling
  the broker starts it) and its batches are taken over after the same lease by any sender
  (`batch_claim_in_flight`: the same stored messages under the same idempotency key), never by django-q2's task
  retry. A drain whose slot was taken over meanwhile (it stalled past its lease) stops claiming. A drain whose time
  is up hands its slot over even while a sender still waits for an answer (`drain_slot_hand_over`); the heartbeat
  then renews only its batches in flight.
- A drain run outside the task queue (`manage.py process_email_queue`) renews each batch on its own while it calls
  (`batch_lease_kept`).
- The every-minute `automations.resume-abandoned-batches` job is the backstop when no drain is alive to notice: it
  wakes a drain for batches whose lease ran out, or for due emails while a slot is vacant.
"""

import logging
import threading
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.leases import lease_kept

from .models import BatchStatus, DrainLease, EmailBatch, EmailQueueItem, QueueStatus

logger = logging.getLogger(__name__)


def _lease() -> timedelta:
    return timedelta(seconds=settings.AUTOMATIONS_LEASE_SECONDS)


def _slot_count() -> int:
    return max(1, settings.AUTOMATIONS_DRAIN_SLOTS)


# --- drains --------------------------------------------------------------------------------------------------------


def drain_lease_take(*, worker: str, cluster: str = "") -> int | None:
    """Take a free slot (never held, released, or its drain stopped beating) for `worker`; None when all are held, or
    when `cluster` (the worker's prefix naming its qcluster process) already runs AUTOMATIONS_DRAINS_PER_CLUSTER
    drains: drains spread over the clusters, so one SIGKILLed cluster leaves a live drain to wake a replacement."""
    now = timezone.now()
    count = _slot_count()
    with transaction.atomic():
        DrainLease.objects.bulk_create(
            [DrainLease(slot=slot, lease_expires_at=now) for slot in range(count)], ignore_conflicts=True
        )
        if cluster and (
            DrainLease.objects.filter(worker__startswith=cluster, lease_expires_at__gt=now).count()
            >= settings.AUTOMATIONS_DRAINS_PER_CLUSTER
        ):
            return None  # a live drain's next beat wakes another drain, which may land on another cluster
        lease = (
            DrainLease.objects.select_for_update(skip_locked=True)
            .filter(slot__lt=count, lease_expires_at__lte=now)
            .order_by("slot")
            .first()
        )
        if lease is None:
            return None
        if lease.worker:
            logger.warning("Drain slot %s: %s stopped beating; %s takes over", lease.slot, lease.worker, worker)
        lease.worker, lease.taken_at, lease.lease_expires_at = worker, now, now + _lease()
        lease.save(update_fields=["worker", "taken_at", "lease_expires_at"])
    return lease.slot


def drain_lease_renew(*, slot: int, worker: str) -> bool:
    """The heartbeat: push on the slot's lease and those of the batches `worker` is calling for. False once another
    drain has taken the slot (this one stalled past its lease)."""
    expires = timezone.now() + _lease()
    renewed = DrainLease.objects.filter(slot=slot, worker=worker).update(lease_expires_at=expires)
    if renewed:
        EmailBatch.objects.filter(status=BatchStatus.SENDING, worker=worker, call_in_progress=True).update(
            lease_expires_at=expires
        )
        return True
    # Lost only when another drain is seen holding the slot. A row this connection cannot see (the heartbeat has its
    # own connection; in a test the slot was taken inside a transaction not yet committed) is no proof of a takeover.
    return not DrainLease.objects.filter(slot=slot).exclude(worker=worker).exists()


def drain_lease_release(*, slot: int, worker: str) -> None:
    DrainLease.objects.filter(slot=slot, worker=worker).update(worker="", lease_expires_at=timezone.now())


def drain_slots_vacant(*, now=None) -> int:
    """Slots no live drain holds (never taken, released, or run out)."""
    now = now or timezone.now()
    held = DrainLease.objects.filter(slot__lt=_slot_count(), lease_expires_at__gt=now).count()
    return max(0, _slot_count() - held)


def emails_due(*, now=None) -> bool:
    """Whether an email or a batch waits to be sent now."""
    now = now or timezone.now()
    return (
        EmailQueueItem.objects.filter(status=QueueStatus.PENDING, next_attempt_at__lte=now).exists()
        or EmailBatch.objects.filter(status=BatchStatus.SENDING, lease_expires_at__lte=now).exists()
    )


def drain_replacement_wake() -> bool:
    """Enqueue another drain when a slot is vacant while emails are due (a drain died, or the load grew)."""
    if drain_slots_vacant() and emails_due():
        from .drain_control import queue_process_enqueue

        queue_process_enqueue()  # coalesced: at most one drain task waits on the broker
        return True
    return False


def drain_batches_renew(*, worker: str) -> None:
    """Push on the leases of the batches `worker` is calling for (a drain that handed its slot over)."""
    EmailBatch.objects.filter(status=BatchStatus.SENDING, worker=worker, call_in_progress=True).update(
        lease_expires_at=timezone.now() + _lease()
    )


def drain_slot_hand_over(*, slot: int, worker: str, handed_over: threading.Event) -> None:
    """The drain's time is up while a sender still waits for an answer (a late one takes up to the read timeout):
    free the slot for the next drain now, and wake it if emails are due. The heartbeat then keeps only the batches
    still being called for (`handed_over`); no sender claims another."""
    handed_over.set()
    drain_lease_release(slot=slot, worker=worker)
    drain_replacement_wake()


@contextmanager
def drain_lease_kept(*, slot: int, worker: str, handed_over: threading.Event | None = None):
    """The drain's heartbeat while it runs; yields an event set when the slot was lost to another drain. Once
    `handed_over` is set it renews only the drain's batches in flight."""

    def beat() -> bool:
        if handed_over is not None and handed_over.is_set():
            drain_batches_renew(worker=worker)
            return True
        if not drain_lease_renew(slot=slot, worker=worker):
            return False
        drain_replacement_wake()
        return True

    with lease_kept(renew=beat, lease_seconds=settings.AUTOMATIONS_LEASE_SECONDS, name=f"drain {worker}") as lost:
        yield lost


# --- batches of a drain outside the task queue ---------------------------------------------------------------------


def batch_lease_renew(*, batch_id: int, worker: str) -> bool:
    """Push the lease on while `worker` is still calling for the batch. False once the call's outcome is recorded
    (the batch is sent, or waits for a retry with its own time, `call_in_progress` off) or another worker took it."""
    return bool(
        EmailBatch.objects.filter(pk=batch_id, status=BatchStatus.SENDING, worker=worker, call_in_progress=True).update(
            lease_expires_at=timezone.now() + _lease()
        )
    )


def batch_lease_kept(*, batch: EmailBatch, worker: str) -> AbstractContextManager[threading.Event]:
    """Renew the batch's lease in the background while `worker` calls for it."""
    return lease_kept(
        renew=lambda: batch_lease_renew(batch_id=batch.pk, worker=worker),
        lease_seconds=settings.AUTOMATIONS_LEASE_SECONDS,
        name=f"email batch {batch.pk}",
    )


def abandoned_batches_due(*, now=None) -> int:
    """Batches whose lease has run out: a drain died while it held them (or a retry's wait is over)."""
    now = now or timezone.now()
    return EmailBatch.objects.filter(status=BatchStatus.SENDING, lease_expires_at__lte=now).count()


def abandoned_batches_resume() -> int:
    """The every-minute backstop: wake a drain when a batch's lease ran out, or when emails are due while a drain slot
    is vacant, so they are sent without waiting for the queue's next run. Returns how many batches were due."""
    due = abandoned_batches_due()
    if due:
        from .drain_control import queue_process_enqueue

        queue_process_enqueue()
    else:
        drain_replacement_wake()
    return due
