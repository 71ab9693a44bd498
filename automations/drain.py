"""Draining the email queue: claim due emails (batch_claim), send them in batches through the selected transport and
record what happened (batch_outcome), paced under the provider's rate limit (pacing). Safe in several workers at once.

A task drain (`email_queue_drain`) holds a drain slot with a heartbeat (drain_leases) and runs several senders, each
with its own batch in flight, so the provider's rate, not one call's answer time, sets the pace.
"""

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext

from django.conf import settings
from django.db import connections
from django.db.models import Min
from django.utils import timezone

from .batch_claim import DrainResult, batch_claim_in_flight, batch_claim_new
from .batch_outcome import batch_send
from .drain_control import (
    drain_wake_clear,
    probe_claim,
    queue_process_enqueue,
    sending_pause_get,
    sending_resume,
)
from .drain_leases import (
    batch_lease_kept,
    drain_lease_kept,
    drain_lease_release,
    drain_lease_take,
    drain_replacement_wake,
    drain_slot_hand_over,
)
from .models import (
    BatchStatus,
    EmailBatch,
    EmailQueueItem,
    QueueStatus,
)
from .pacing import call_slot_wait
from .queue_feeders import queue_feeders_run
from .services.enrollments import enrollments_complete_finished
from .services.tracking import email_events_link_recent_unmatched
from .transports import transport_get

logger = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


WAIT_STEP_SECONDS = 1.0
FEED_WAIT_SECONDS = 0.5  # nothing due while a producer queues: look again this soon


def _seconds_to_next_due() -> float | None:
    """When the next email or batch retry is due, in seconds from now (0 if already), or None if nothing waits."""
    pending = EmailQueueItem.objects.filter(status=QueueStatus.PENDING).aggregate(at=Min("next_attempt_at"))["at"]
    retry = EmailBatch.objects.filter(status=BatchStatus.SENDING).aggregate(at=Min("lease_expires_at"))["at"]
    moments = [moment for moment in (pending, retry) if moment is not None]
    if not moments:
        return None
    return max(0.0, (min(moments) - timezone.now()).total_seconds())


def _waited_for_due(
    *, deadline: float, sleep: Callable[[float], None], result: DrainResult, feeding: bool = False
) -> bool:
    """Wait a step for an email or retry that falls due before the deadline, or for a producer that is queuing
    (`feeding`, automations.queue_feeders); False when there is nothing to wait for."""
    due_in = _seconds_to_next_due()
    if feeding and (due_in is None or due_in > FEED_WAIT_SECONDS):
        due_in = FEED_WAIT_SECONDS
    if due_in is None or time.monotonic() + due_in >= deadline:
        return False
    # In steps of at most a second: an email enqueued meanwhile (whose wake-up found this slot busy) must not wait
    # for a retry due much later.
    step = min(max(due_in, 0.05), WAIT_STEP_SECONDS)
    sleep(step)
    result.waited_seconds += step
    return True


def _batch_next(*, worker: str, size: int, probing: bool, result: DrainResult, wait_for_due, deadline, sleep):
    """The batch to send next: one whose lease ran out (a retry, a dead drain's), else a new one. The one place a
    claim happens, so a bulk gate on the claimed emails has one place to be called. Returns (batch, go_on):
    (None, True) means look again, (None, False) means this drain is done."""
    batch = batch_claim_in_flight(worker=worker)
    if batch is not None:
        return batch, True
    batch, handled = batch_claim_new(worker=worker, size=1 if probing else size, result=result)
    if batch is not None:
        return batch, True
    if handled and not probing:
        return None, True  # every claimed email was cancelled, suppressed or failed; look for more
    if not wait_for_due or probing:
        return None, False
    feed = queue_feeders_run()  # a broadcast still queuing: its next chunk, or wait for its own task's
    if feed.queued:
        return None, True
    return None, _waited_for_due(deadline=deadline, sleep=sleep, result=result, feeding=feed.busy)


def email_queue_process(
    *,
    worker: str | None = None,
    time_budget: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    wait_for_due: bool = False,
    stop: threading.Event | None = None,
) -> DrainResult:
    """Drain due emails until none is left or the time budget is spent. Safe to run in several workers at once.

    With `wait_for_due` (the task queue's drain) it also waits for emails and retries that fall due within the
    budget instead of leaving them to the next scheduled run. With `stop` (a sender of a task drain, whose heartbeat
    renews the leases of its batches) it ends when the event is set and keeps no lease of its own.
    """
    if settings.EMAIL_DELIVERY == "disabled":
        # Nothing is sent and nothing is marked sent: due emails stay pending until delivery is enabled again.
        # Reported as a pause, so a task's drain ends at once instead of waiting for emails it will never send.
        logger.warning("Email delivery is disabled (EMAIL_DELIVERY=disabled): the email queue is not drained.")
        return DrainResult(paused="Email delivery is disabled (EMAIL_DELIVERY=disabled).")
    worker = worker or worker_name()
    deadline = time.monotonic() + (settings.AUTOMATIONS_DRAIN_SECONDS if time_budget is None else time_budget)
    transport = transport_get()
    result = DrainResult()
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        probing = False
        pause = sending_pause_get(provider=transport.provider)
        if pause is not None:
            result.paused = pause.cause
            if not probe_claim(provider=transport.provider):
                break  # not this worker's turn to probe; every email stays where it is
            probing = True
        waits = {"wait_for_due": wait_for_due, "deadline": deadline, "sleep": sleep}
        batch, go_on = _batch_next(worker=worker, size=transport.batch_size, probing=probing, result=result, **waits)
        if batch is None:
            if go_on:
                continue
            break
        # A drain that dies here leaves the lease to run out (its heartbeat, or this batch's own renewals, stop).
        with nullcontext() if stop is not None else batch_lease_kept(batch=batch, worker=worker):
            call_slot_wait(transport=transport, sleep=sleep)
            wait = batch_send(batch=batch, transport=transport, result=result, worker=worker)
        if probing:
            if not EmailBatch.objects.filter(pk=batch.pk, status=BatchStatus.SENT).exists():
                break  # the probe did not get through: stay paused
            sending_resume(provider=transport.provider, by="a probe call went through")
            result.paused = ""
        if wait:
            # A 429 is about our whole account, not this batch: every further call would be refused too (the shared
            # call slot holds every other sender as long, batch_outcome).
            if time.monotonic() + wait >= deadline:
                break
            sleep(wait)
            result.waited_seconds += wait
    enrollments_complete_finished(enrollment_ids=result.touched_enrollments)
    email_events_link_recent_unmatched(provider=transport.provider)
    return result


def _senders_run(*, worker: str, deadline: float, sleep, stop: threading.Event) -> DrainResult:
    """AUTOMATIONS_DRAIN_SENDERS senders, each claiming and sending its own batches under the shared pace, so a late
    answer holds up only its own batch. One sender runs in the calling thread; the others in threads, each with its
    own database connection and transport."""
    count = max(1, settings.AUTOMATIONS_DRAIN_SENDERS)
    results: list[DrainResult] = []

    def send() -> None:
        kwargs = {"time_budget": deadline - time.monotonic(), "sleep": sleep, "wait_for_due": True, "stop": stop}
        results.append(email_queue_process(worker=worker, **kwargs))

    def send_in_thread() -> None:
        try:
            send()
        except Exception:
            logger.exception("An email sender of drain %s failed", worker)  # its batch's lease runs out: retaken
        finally:
            connections.close_all()  # this thread's connection only

    threads = [threading.Thread(target=send_in_thread, name=f"sender {i}", daemon=True) for i in range(1, count)]
    for thread in threads:
        thread.start()
    try:
        send()
    finally:
        for thread in threads:
            thread.join()
    total = DrainResult()
    for result in results:
        total.add(result)
    return total


# A task drain runs between this share of AUTOMATIONS_DRAIN_SECONDS and all of it, at random. Drains woken together
# (a broadcast's first wake-up starts every slot's) would otherwise all end together, each handing over to one
# coalesced continuation task; a cluster killed while holding that task left no drain at all until the every-minute
# schedule (an 87 s gap with no send in `bin/bench broadcast`). Staggered, a drain that ends leaves a live one whose
# heartbeat wakes a replacement within DRAIN_WAKE_STALE_SECONDS.
DRAIN_SECONDS_SPREAD = 0.6


def _drain_seconds() -> float:
    return settings.AUTOMATIONS_DRAIN_SECONDS * random.uniform(DRAIN_SECONDS_SPREAD, 1.0)


def _slot_hand_over(*, slot: int, worker: str, done: threading.Event) -> None:
    try:
        drain_slot_hand_over(slot=slot, worker=worker, handed_over=done)
    except Exception:  # the slot then runs out with the drain's last answer, as before
        logger.exception("Drain %s could not hand its slot over", worker)
    finally:
        connections.close_all()  # this thread's connection only


def email_queue_drain(*, woken: bool = False, sleep: Callable[[float], None] = time.sleep) -> DrainResult:
    """The task queue's drain: in a free drain slot (a lease with a heartbeat, automations.drain_leases), several
    senders until nothing is due or the time is up; then a fresh task continues if due work is left.

    A drain that finds every slot held ends at once: the drains holding them keep going while emails are due.
    """
    if woken:
        drain_wake_clear()
    # host:cluster pid (a django-q2 worker's parent):worker pid:random, as a pid is reused after a restart.
    cluster = f"{socket.gethostname()}:{os.getppid()}:"
    worker = f"{cluster}{os.getpid()}:{secrets.token_hex(3)}"
    slot = drain_lease_take(worker=worker, cluster=cluster)
    if slot is None:
        return DrainResult()
    seconds = _drain_seconds()
    deadline = time.monotonic() + seconds
    # At the deadline the senders stop claiming; one may still wait up to the read timeout for a late answer. The
    # slot goes to the next drain then, not when that answer comes (a drain killed meanwhile left the other slot).
    handed_over = threading.Event()
    hand_over = threading.Timer(seconds, _slot_hand_over, kwargs={"slot": slot, "worker": worker, "done": handed_over})
    hand_over.daemon = True
    hand_over.start()
    try:
        drain_replacement_wake()  # more slots than drains while work is due: start the next at once
        with drain_lease_kept(slot=slot, worker=worker, handed_over=handed_over) as lost:
            total = _senders_run(worker=worker, deadline=deadline, sleep=sleep, stop=lost)
    finally:
        hand_over.cancel()
        hand_over.join()
        drain_lease_release(slot=slot, worker=worker)
    if not total.paused and (_seconds_to_next_due() == 0.0 or _feeding()):
        queue_process_enqueue()  # due work is left (time ran out, or it came as the senders stopped)
    return total


def _feeding() -> bool:
    """Whether a producer queued emails just now or is queuing: a drain must follow this one."""
    feed = queue_feeders_run()
    return bool(feed.queued or feed.busy)


def send_test_email(*, to: str, rendered, marketing: bool) -> str:
    """The admin's "send me a test": straight to the staff member, outside the queue, never to a customer. From the
    address its customers would see: marketing's own (MARKETING_FROM_EMAIL) for a marketing email."""
    message = {
        "from": settings.MARKETING_FROM_EMAIL if marketing else settings.DEFAULT_FROM_EMAIL,
        "to": [to],
        "subject": f"[Test] {rendered.subject}",
        "html": rendered.html,
        "text": rendered.text,
        "headers": {"X-ModReady-Test": "1"},
    }
    return transport_get().send(message=message)
