"""A drain's claim on the batch it is sending: a lease renewed while it works, resumed within about a minute after
the drain dies.

A batch is claimed with `lease_expires_at = now + AUTOMATIONS_LEASE_SECONDS` (automations.batch_claim). While its drain
makes the call (pacing wait included), `batch_lease_kept` renews that lease every third of it (core/leases.py), so
a slow call never looks abandoned. A drain killed mid-batch stops renewing; once the lease has run out, the
every-minute `automations.resume-abandoned-batches` job sees the batch and wakes a drain (coalesced, like every
wake-up), which takes the batch again (`batch_claim_in_flight`: the same stored messages under the same key). Without
it the batch waited for the queue's next run, every 2 minutes, after a 60-second lease.
"""

from contextlib import AbstractContextManager
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from core.leases import lease_kept

from .models import BatchStatus, EmailBatch


def batch_lease_renew(*, batch_id: int, worker: str) -> bool:
    """Push the lease on while `worker` is still calling for the batch. False once the call's outcome is recorded
    (the batch is sent, or waits for a retry with its own time, `call_in_progress` off) or another worker took it."""
    return bool(
        EmailBatch.objects.filter(pk=batch_id, status=BatchStatus.SENDING, worker=worker, call_in_progress=True).update(
            lease_expires_at=timezone.now() + timedelta(seconds=settings.AUTOMATIONS_LEASE_SECONDS)
        )
    )


def batch_lease_kept(*, batch: EmailBatch, worker: str) -> AbstractContextManager[None]:
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
    """The every-minute job: wake a drain when a batch's lease ran out, so it is sent again without waiting for the
    queue's next run. Returns how many batches were due."""
    due = abandoned_batches_due()
    if due:
        from .drain_control import queue_process_enqueue

        queue_process_enqueue()
    return due
