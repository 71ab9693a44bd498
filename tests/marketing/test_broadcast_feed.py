"""The drains write a queuing broadcast's chunks themselves when nothing is due (marketing.broadcast_tasks.
broadcast_queue_feed, registered with automations.queue_feeders): a queuing task killed with its cluster is taken over
within a second of the queue running dry, not after django-q2's 180 s retry; while the task writes a chunk, a drain
waits for it instead of ending. Measured in bin/bench broadcast (a cluster SIGKILLed every 30 s)."""

import pytest
from django.core import mail

from automations.drain import email_queue_process
from automations.models import EmailQueueItem, QueueStatus
from automations.queue_feeders import Feed, queue_feeder_register, queue_feeders_run
from marketing import broadcast_tasks
from marketing.broadcast_models import Broadcast, BroadcastStatus
from marketing.broadcasts import broadcast_send_now
from tests.row_locks import row_locked_elsewhere

from .conftest import customers_with_consent

pytestmark = pytest.mark.django_db


def started_without_its_task(broadcast, run_on_commit):
    """ "Send now" whose queuing task went to a cluster that was killed before it queued anyone."""
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(broadcast_tasks, "broadcast_enqueue", lambda *args, **kwargs: 0)
        with run_on_commit():
            broadcast_send_now(broadcast=broadcast, actor=None)
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.QUEUING and broadcast.queued_count == 0


def test_a_drain_queues_a_broadcast_whose_task_died_and_sends_each_recipient_once(
    make_broadcast, run_on_commit, no_drain_wakeups, monkeypatch
):
    monkeypatch.setattr(broadcast_tasks, "CHUNK_SIZE", 3)
    fans = customers_with_consent(7)
    broadcast = make_broadcast()
    started_without_its_task(broadcast, run_on_commit)

    result = email_queue_process(wait_for_due=True, time_budget=30, sleep=lambda seconds: None)

    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SENDING and broadcast.queued_count == 7
    assert broadcast.audience_at_start == 7
    assert result.sent == 7 and sorted(m.to[0] for m in mail.outbox) == sorted(f.email for f in fans)
    assert set(EmailQueueItem.objects.values_list("status", flat=True)) == {QueueStatus.SENT}
    assert broadcast.audit.filter(action="queued").count() == 1
    # The task's own retry (django-q2's, 180 s later) then finds nothing left to queue.
    assert broadcast_tasks.broadcast_enqueue(broadcast.pk) == 0 and len(mail.outbox) == 7


def test_a_drain_feeds_nothing_from_a_paused_or_sent_broadcast(make_broadcast, run_on_commit, no_drain_wakeups):
    customers_with_consent(2)
    broadcast = make_broadcast()
    started_without_its_task(broadcast, run_on_commit)
    Broadcast.objects.filter(pk=broadcast.pk).update(status=BroadcastStatus.PAUSED)
    assert queue_feeders_run() == Feed(queued=0, busy=False)
    assert not EmailQueueItem.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("planned", [False, True], ids=["planning", "writing a chunk"])
def test_while_the_task_writes_a_chunk_a_drain_waits_for_it_instead_of_ending(
    make_broadcast, run_on_commit, no_drain_wakeups, planned
):
    customers_with_consent(3)
    broadcast = make_broadcast()
    started_without_its_task(broadcast, run_on_commit)
    if planned:  # the task got past its first step (the audience counted) before it was seen holding the row
        assert broadcast_tasks._enqueue_plan(broadcast.pk)
    with row_locked_elsewhere(broadcast):  # the broadcast's own task writing a chunk
        assert queue_feeders_run() == Feed(queued=0, busy=True)  # not waited for: the drain looks again soon
    assert queue_feeders_run() == Feed(queued=3, busy=False)


def test_a_failing_feeder_is_logged_and_the_others_still_feed(monkeypatch, caplog):
    def broken() -> Feed:
        raise RuntimeError("database gone")

    monkeypatch.setattr("automations.queue_feeders._feeders", [])
    queue_feeder_register(broken)
    queue_feeder_register(lambda: Feed(queued=2))
    queue_feeder_register(broken)  # registered once
    assert queue_feeders_run() == Feed(queued=2)
    assert [record.exc_info[1].args for record in caplog.records] == [("database gone",)]
