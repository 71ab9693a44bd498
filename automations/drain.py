"""Draining the email queue: claim due emails (batch_claim), send them in batches through the selected transport and
record what happened (batch_outcome), paced under the provider's rate limit (pacing). Safe in several workers at once.
"""

import logging
import os
import socket
import time
from collections.abc import Callable

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from .batch_claim import DrainResult, batch_claim_in_flight, batch_claim_new
from .batch_outcome import batch_send
from .drain_control import (
    drain_slot,
    drain_wake_clear,
    probe_claim,
    queue_process_enqueue,
    sending_pause_get,
    sending_resume,
)
from .drain_leases import batch_lease_kept
from .models import (
    BatchStatus,
    EmailBatch,
    EmailQueueItem,
    QueueStatus,
)
from .pacing import call_slot_wait
from .services.enrollments import enrollments_complete_finished
from .services.tracking import email_events_link_recent_unmatched
from .transports import transport_get

logger = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


WAIT_STEP_SECONDS = 1.0


def _seconds_to_next_due() -> float | None:
    """When the next email or batch retry is due, in seconds from now (0 if already), or None if nothing waits."""
    pending = EmailQueueItem.objects.filter(status=QueueStatus.PENDING).aggregate(at=Min("next_attempt_at"))["at"]
    retry = EmailBatch.objects.filter(status=BatchStatus.SENDING).aggregate(at=Min("lease_expires_at"))["at"]
    moments = [moment for moment in (pending, retry) if moment is not None]
    if not moments:
        return None
    return max(0.0, (min(moments) - timezone.now()).total_seconds())


def _waited_for_due(*, deadline: float, sleep: Callable[[float], None], result: DrainResult) -> bool:
    """Wait a step for an email or retry that falls due before the deadline; False when none does."""
    due_in = _seconds_to_next_due()
    if due_in is None or time.monotonic() + due_in >= deadline:
        return False
    # In steps of at most a second: an email enqueued meanwhile (whose wake-up found this slot busy) must not wait
    # for a retry due much later.
    step = min(max(due_in, 0.05), WAIT_STEP_SECONDS)
    sleep(step)
    result.waited_seconds += step
    return True


def email_queue_process(
    *,
    worker: str | None = None,
    time_budget: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    wait_for_due: bool = False,
) -> DrainResult:
    """Drain due emails until none is left or the time budget is spent. Safe to run in several workers at once.

    With `wait_for_due` (the task queue's drain) it also waits for emails and retries that fall due within the
    budget instead of leaving them to the next scheduled run.
    """
    if settings.EMAIL_DELIVERY == "disabled":
        # Nothing is sent and nothing is marked sent: due emails stay pending until delivery is enabled again.
        # Reported as a pause, so a task's drain ends at once instead of waiting for emails it will never send.
        logger.warning("Email delivery is disabled (EMAIL_DELIVERY=disabled): the email queue is not drained.")
        return DrainResult(paused="Email delivery is disabled (EMAIL_DELIVERY=disabled).")
    worker = worker or worker_name()
    budget = settings.AUTOMATIONS_DRAIN_SECONDS if time_budget is None else time_budget
    deadline = time.monotonic() + budget
    transport = transport_get()
    result = DrainResult()
    while time.monotonic() < deadline:
        probing = False
        pause = sending_pause_get(provider=transport.provider)
        if pause is not None:
            result.paused = pause.cause
            if not probe_claim(provider=transport.provider):
                break  # not this worker's turn to probe; every email stays where it is
            probing = True
        batch = batch_claim_in_flight(worker=worker)
        if batch is None:
            size = 1 if probing else transport.batch_size
            batch, handled = batch_claim_new(worker=worker, size=size, result=result)
            if batch is None:
                if handled and not probing:
                    continue  # every claimed email was cancelled, suppressed or failed; look for more
                if wait_for_due and not probing and _waited_for_due(deadline=deadline, sleep=sleep, result=result):
                    continue
                break
        with batch_lease_kept(batch=batch, worker=worker):  # a drain that dies here leaves the lease to run out
            call_slot_wait(transport=transport, sleep=sleep)
            wait = batch_send(batch=batch, transport=transport, result=result, worker=worker)
        if probing:
            if not EmailBatch.objects.filter(pk=batch.pk, status=BatchStatus.SENT).exists():
                break  # the probe did not get through: stay paused
            sending_resume(provider=transport.provider, by="a probe call went through")
            result.paused = ""
        if wait:
            # A 429 is about our whole account, not this batch: every further call would be refused too.
            if time.monotonic() + wait >= deadline:
                break
            sleep(wait)
            result.waited_seconds += wait
    enrollments_complete_finished(enrollment_ids=result.touched_enrollments)
    email_events_link_recent_unmatched(provider=transport.provider)
    return result


def email_queue_drain(*, woken: bool = False, sleep: Callable[[float], None] = time.sleep) -> DrainResult:
    """The task queue's drain: in a free slot, until nothing is due, then hand over to a fresh task if time ran out.

    A drain that finds every slot busy ends at once: each busy drain looks for due work again after giving its slot
    back, so the emails that woke it are not left behind.
    """
    if woken:
        drain_wake_clear()
    deadline = time.monotonic() + settings.AUTOMATIONS_DRAIN_SECONDS
    total = DrainResult()
    while True:
        with drain_slot() as slot:
            if slot is None:
                return total
            total.add(email_queue_process(time_budget=deadline - time.monotonic(), sleep=sleep, wait_for_due=True))
        if total.paused or _seconds_to_next_due() != 0.0:
            return total
        if time.monotonic() >= deadline - 1:
            queue_process_enqueue()  # due work is left and this task's time is up: a fresh task continues
            return total


def send_test_email(*, to: str, rendered, marketing: bool) -> str:
    """The admin's "send me a test": straight to the staff member, outside the queue, never to a customer."""
    message = {
        "from": settings.DEFAULT_FROM_EMAIL,
        "to": [to],
        "subject": f"[Test] {rendered.subject}",
        "html": rendered.html,
        "text": rendered.text,
        "headers": {"X-ModReady-Test": "1"},
    }
    return transport_get().send(message=message)
