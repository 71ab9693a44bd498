"""An email batch held by a drain that was killed is sent within about a minute: the batch's lease is renewed while
its drain works and runs out soon after the drain dies, and the every-minute resume job wakes a drain for it. The kill
is simulated as SIGKILL leaves it: the batch claimed (emails `sending`, lease set) and nothing after. The clock is
moved, never slept."""

from datetime import timedelta

import pytest

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
