"""An email batch held by a drain that was killed is sent within about a minute: the batch's lease is renewed while
its drain works and runs out soon after the drain dies, and the every-minute resume job wakes a drain for it. The kill
is simulated as SIGKILL leaves it: the batch claimed (emails `sending`, lease set) and nothing after. The clock is
moved, never slept."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from automations.batch_claim import DrainResult, batch_claim_new
from automations.models import EmailBatch, EmailQueueItem, QueueStatus
from devtools.clock import as_of
from tests.scheduler import next_even_minute, run_schedules

from .test_sending import queue_welcomes

pytestmark = pytest.mark.django_db


def test_a_batch_held_by_a_killed_drain_is_sent_within_a_minute(resend):
    queue_welcomes(2)  # 4 emails due
    killed_at = next_even_minute() + timedelta(seconds=5)
    with as_of(killed_at):
        batch, _ = batch_claim_new(worker="killed", size=100, result=DrainResult())  # ... and the drain dies here
    assert set(EmailQueueItem.objects.values_list("status", flat=True)) == {QueueStatus.SENDING}

    run_schedules(app="automations", after=killed_at, until=killed_at + timedelta(seconds=60))

    assert set(EmailQueueItem.objects.values_list("status", flat=True)) == {QueueStatus.SENT}
    assert len(resend.delivered) == 4 and not resend.duplicates()
    assert resend.requests[0].header("idempotency-key") == EmailBatch.objects.get(pk=batch.pk).provider_idempotency_key


def test_a_batch_whose_drain_is_alive_is_left_to_it(resend, settings):
    queue_welcomes(2)
    claimed_at = next_even_minute() + timedelta(seconds=5)
    with as_of(claimed_at):
        batch, _ = batch_claim_new(worker="alive", size=100, result=DrainResult())
    lease = timedelta(seconds=settings.AUTOMATIONS_LEASE_SECONDS)

    # The drain renews the lease while its call runs (as the renewal thread does), so the resume job leaves it.
    from automations.drain_leases import abandoned_batches_due, batch_lease_renew

    with as_of(claimed_at + lease * 0.6):
        assert batch_lease_renew(batch_id=batch.pk, worker="alive")
        assert not batch_lease_renew(batch_id=batch.pk, worker="another")
    with as_of(claimed_at + lease * 1.2):
        assert abandoned_batches_due() == 0
        assert resend.delivered == []
    with as_of(claimed_at + lease * 1.7):
        assert abandoned_batches_due() == 1


@pytest.mark.django_db(transaction=True)
def test_at_its_deadline_a_drain_waiting_for_a_late_answer_hands_its_slot_to_the_next(resend, settings, monkeypatch):
    """Seen in the broadcast bench: a drain past its time, its last sender waiting 15 s for a late answer, kept its
    slot while the other drain had been killed: no email went out until that answer came."""
    settings.AUTOMATIONS_DRAIN_SLOTS = 1
    settings.AUTOMATIONS_LEASE_SECONDS = 1.5  # the heartbeat beats every 0.5 s
    settings.AUTOMATIONS_SEND_TIMEOUT = 3
    monkeypatch.setattr("automations.drain._drain_seconds", lambda: 0.5)
    queue_welcomes(1)  # one batch
    resend.answer_late_next(seconds=2.5)  # handled at once, answered after the drain's 0.5 s
    from automations.drain import email_queue_drain
    from automations.drain_leases import drain_lease_take

    seen = {}

    def next_drain() -> None:
        try:
            time.sleep(1.2)  # past the first drain's deadline, its call still waiting
            seen["slot"] = drain_lease_take(worker="next")
            seen["batch"] = EmailBatch.objects.values("worker", "lease_expires_at", "status").get()
            seen["at"] = timezone.now()
        finally:
            connections.close_all()

    waiting = threading.Thread(target=next_drain)
    waiting.start()
    result = email_queue_drain(woken=True, sleep=lambda seconds: None)
    waiting.join()

    assert seen["slot"] == 0  # the slot was free for the next drain while the first still waited
    # ... and the batch in flight stayed the first drain's, its lease renewed past its answer time.
    assert seen["batch"]["status"] == "sending" and seen["batch"]["worker"] != "next"
    assert seen["batch"]["lease_expires_at"] > seen["at"]
    assert result.sent == 2 and len(resend.delivered) == 2 and resend.requests_to("POST", "/emails/batch")
    assert len(resend.requests) == 1  # the late answer came in time: never sent again
