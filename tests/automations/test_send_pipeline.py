"""The send pipeline at the provider's ceiling: several senders with their own batch in flight under one shared pace,
drains that hold a lease with a heartbeat and are replaced when it goes stale, and a per-batch cost that does not grow
with the batch. The clock is moved (devtools.clock.as_of) rather than slept; the few real waits are under a second.
Speed itself is measured in bench/broadcast.py."""

import itertools
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automations.batch_claim import DrainResult, batch_claim_in_flight, batch_claim_new
from automations.batch_outcome import batch_send
from automations.drain import email_queue_drain, email_queue_process
from automations.drain_leases import drain_lease_renew, drain_lease_take, drain_replacement_wake
from automations.models import BatchStatus, EmailBatch, EmailQueueItem, QueueStatus
from automations.pacing import provider_slot_hold, provider_slot_reserve, provider_slot_take
from automations.transports import transport_get
from devtools.clock import as_of

from .test_sending import queue_welcomes

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
def test_a_drains_senders_each_take_their_own_batches_and_no_email_goes_twice(resend, settings):
    settings.AUTOMATIONS_DRAIN_SENDERS = 4
    settings.AUTOMATIONS_BATCH_SIZE = 5
    resend.latency = 0.05  # long enough that the senders' calls overlap
    queue_welcomes(30)  # 60 emails, 12 batches

    result = email_queue_drain(woken=True, sleep=lambda seconds: None)

    # Batches of at most 5 (senders claiming the queue's tail at the same moment may share it: a few more, smaller).
    assert result.sent == 60 and result.batches == EmailBatch.objects.count() >= 12
    assert all(len(messages) <= 5 for messages in EmailBatch.objects.values_list("messages", flat=True))
    assert len(resend.delivered) == 60 and resend.duplicates() == {}
    keys = [request.header("idempotency-key") for request in resend.requests]
    assert len(set(keys)) == len(keys) == result.batches  # every batch its own key, each called once
    assert set(EmailQueueItem.objects.values_list("status", flat=True)) == {QueueStatus.SENT}
    arrivals = sorted(request.received_at for request in resend.requests)
    # Several calls were in flight at once: some came within one call's answer time of the one before.
    assert any(b - a < resend.latency for a, b in itertools.pairwise(arrivals))


@pytest.mark.django_db(transaction=True)
def test_a_late_answer_holds_up_only_its_own_batch_and_is_retried_under_its_key(resend, settings):
    settings.AUTOMATIONS_DRAIN_SENDERS = 3
    settings.AUTOMATIONS_BATCH_SIZE = 5
    settings.AUTOMATIONS_SEND_TIMEOUT = 1.5
    settings.AUTOMATIONS_RETRY_BASE_SECONDS = 0  # the retry is due at once
    queue_welcomes(10)  # 20 emails, 4 batches
    resend.answer_late_next(seconds=2)  # handled, then answered after the read timeout: outcome unknown

    result = email_queue_drain(woken=True, sleep=lambda seconds: None)

    by_key = {}
    for request in resend.requests:
        by_key.setdefault(request.header("idempotency-key"), []).append(request)
    # Batches of at most 5; two senders claiming the queue's tail at the same moment share it (SKIP LOCKED), so
    # there may be a fifth, smaller batch. Each batch is its own key.
    batch_sizes = list(EmailBatch.objects.values_list("messages", flat=True))
    assert len(by_key) == len(batch_sizes) >= 4 and all(len(messages) <= 5 for messages in batch_sizes)
    [late_calls] = [calls for calls in by_key.values() if len(calls) > 1]  # the late batch, called again
    late_key = late_calls[0].header("idempotency-key")
    assert {call.body for call in late_calls} == {late_calls[0].body}  # under its key, byte-identical payload
    others = [email for email in resend.delivered if email.idempotency_key != late_key]
    assert len(others) == 20 - len(late_calls[0].json())
    # The other batches went out while the late one's answer was still awaited (its retry follows the timeout).
    assert max(email.delivered_at for email in others) < late_calls[1].received_at
    assert result.sent == 20 and resend.duplicates() == {} and len(resend.delivered) == 20


def test_a_stale_drain_lease_is_taken_over_and_the_dead_drains_batch_resent_under_its_key(resend, settings):
    settings.AUTOMATIONS_DRAIN_SLOTS = 1
    queue_welcomes(3)
    lease = timedelta(seconds=settings.AUTOMATIONS_LEASE_SECONDS)
    killed_at = timezone.now()
    with as_of(killed_at):
        assert drain_lease_take(worker="dead") == 0
        batch, _ = batch_claim_new(worker="dead", size=100, result=DrainResult())
        # The dead drain's call reached Resend; the answer never reached us (SIGKILL).
        transport_get().send_batch(
            messages=[e["message"] for e in batch.messages], idempotency_key=batch.provider_idempotency_key
        )
    with as_of(killed_at + lease * 0.8):
        assert drain_lease_take(worker="alive") is None  # still within the dead drain's last lease
        assert batch_claim_in_flight(worker="alive") is None

    with as_of(killed_at + lease * 1.1):
        assert drain_lease_take(worker="alive") == 0
        assert not drain_lease_renew(slot=0, worker="dead")  # a drain that only stalled learns it lost the slot
        taken = batch_claim_in_flight(worker="alive")
        assert taken.pk == batch.pk and taken.possibly_accepted  # outcome unknown: only re-sent exactly as stored
        batch_send(batch=taken, transport=transport_get(), result=DrainResult(), worker="alive")

    assert [r.header("idempotency-key") for r in resend.requests] == [batch.provider_idempotency_key] * 2
    assert resend.requests[0].body == resend.requests[1].body
    assert len(resend.delivered) == 6 and resend.idempotent_repeats == 1
    assert set(EmailQueueItem.objects.values_list("status", flat=True)) == {QueueStatus.SENT}


def test_the_heartbeat_keeps_the_drains_batches_and_wakes_a_replacement_for_a_dead_drain(resend, settings):
    settings.AUTOMATIONS_DRAIN_SLOTS = 2
    queue_welcomes(2)
    lease = timedelta(seconds=settings.AUTOMATIONS_LEASE_SECONDS)
    started = timezone.now()
    with as_of(started):
        assert drain_lease_take(worker="alive") == 0
        assert drain_lease_take(worker="dead") == 1
        batch, _ = batch_claim_new(worker="alive", size=2, result=DrainResult())  # 2 more stay due
    with mock.patch("django_q.tasks.async_task") as enqueue:
        with as_of(started + lease * 0.6):
            assert drain_lease_renew(slot=0, worker="alive")  # the dead one no longer beats
            assert not drain_replacement_wake()  # both slots still held: nothing to replace yet
        with as_of(started + lease * 1.3):
            # The live drain's batch is not up for takeover: its lease moved with the heartbeat.
            assert batch_claim_in_flight(worker="other") is None
            assert drain_replacement_wake()
    assert enqueue.call_count == 1
    assert enqueue.call_args.args[0] == "automations.tasks.email_queue_process_task"
    assert EmailBatch.objects.get(pk=batch.pk).worker == "alive"


def test_a_drain_finding_every_slot_held_ends_at_once(resend, settings):
    settings.AUTOMATIONS_DRAIN_SLOTS = 1
    queue_welcomes(1)
    assert drain_lease_take(worker="another drain") == 0

    assert email_queue_drain(woken=True, sleep=lambda seconds: None).sent == 0
    assert resend.requests == []


# --- per-batch cost ------------------------------------------------------------------------------------------------


def _claim_and_send(count: int) -> tuple[EmailBatch, DrainResult]:
    result = DrainResult()
    batch, _ = batch_claim_new(worker="w", size=count, result=result)
    batch_send(batch=batch, transport=transport_get(), result=result, worker="w")
    return batch, result


def test_rendering_and_recording_a_batch_cost_the_same_queries_at_10_and_at_100_emails(
    resend, django_assert_num_queries
):
    from billing.models import Subscription

    customers = queue_welcomes(58)  # 116 emails due, to addresses and customers of every kind
    for customer in customers[::2]:  # half have a subscription in billing, half only the triggering event
        Subscription.objects.create(customer=customer, stripe_subscription_id=f"sub_{customer.pk}", status="active")
    _claim_and_send(5)  # once per process: the installation id, the link settings
    with CaptureQueriesContext(connection) as first:
        batch, result = _claim_and_send(10)
    assert result.sent == 10 and len(batch.messages) == 10

    with django_assert_num_queries(len(first)):
        batch, result = _claim_and_send(100)
    assert result.sent == 100 and len(resend.delivered) == 115


# --- one pace for every sender -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_drains_share_one_pace_and_a_429_holds_both():
    taken = {}

    def other_drain():
        try:
            taken["other"] = provider_slot_take(provider="resend", interval=0.5)
        finally:
            connections.close_all()

    was_taken, wait = provider_slot_take(provider="resend", interval=0.5)
    assert was_taken and wait == pytest.approx(0, abs=0.05)
    thread = threading.Thread(target=other_drain)
    thread.start()
    thread.join()
    # The other drain, in its own connection, takes the next slot, one interval later: never the same one.
    was_taken, wait = taken["other"]
    assert was_taken and wait == pytest.approx(0.5, abs=0.1)
    # A third sender finds both near slots taken: it is told when to ask again, and holds nothing meanwhile.
    was_taken, wait = provider_slot_take(provider="resend", interval=0.5)
    assert not was_taken and wait == pytest.approx(0.5, abs=0.1)
    assert provider_slot_reserve(provider="resend", interval=0.5) == pytest.approx(1.0, abs=0.1)

    provider_slot_hold(provider="resend", seconds=30)  # a 429 with Retry-After: 30, seen by any sender
    was_taken, wait = provider_slot_take(provider="resend", interval=0.5)
    assert not was_taken and wait == pytest.approx(29.5, abs=0.2)


def test_a_429_holds_the_shared_slot_for_every_sender(resend, settings):
    settings.AUTOMATIONS_RESEND_REQUESTS_PER_SECOND = 2
    queue_welcomes(1)
    resend.fail_next(429, retry_after=20)

    result = email_queue_process(time_budget=5, sleep=lambda seconds: None)

    assert result.rate_limited == 1 and resend.delivered == []
    assert EmailBatch.objects.get().status == BatchStatus.SENDING
    was_taken, wait = provider_slot_take(provider="resend", interval=0.5)
    assert not was_taken and wait > 18  # any other sender, in any process, waits the 20 s out too
