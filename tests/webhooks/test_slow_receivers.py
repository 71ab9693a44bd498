"""Receivers that hold a delivery: one that trickles bytes, one that answers 200 MB, a worker killed mid-call, and an
endpoint that never accepts anything. Real sockets on 127.0.0.1 (devtools/fakes/slow_receiver.py).

The bounds asserted are loose on purpose (they hold on a loaded machine): a send must end within 3x its deadline,
against the 30 s a trickling receiver would otherwise hold it, and read under 20 MB, against the 400+ MB a whole
200 MB answer costs."""

import time
import tracemalloc

import pytest
from django.urls import reverse

from devtools.fakes.slow_receiver import SlowReceiver
from devtools.fakes.webhook_receiver import FakeWebhookReceiver
from tests.customers.factories import CustomerFactory, StaffUserFactory
from webhooks import services
from webhooks.models import DeliveryStatus, OutboundDelivery
from webhooks.transport import PinnedAddressAdapter

from . import test_delivery
from .test_delivery import ALL_TYPES, time_passes

pytestmark = pytest.mark.django_db

DEADLINE = 2  # seconds, WEBHOOKS_TIMEOUT for these tests
lifecycle = test_delivery.lifecycle  # the same fixture: a lifecycle change, sent inline


@pytest.fixture
def deadline(settings):
    settings.WEBHOOKS_TIMEOUT = DEADLINE
    return DEADLINE


def send_timed(lifecycle) -> float:
    """A lifecycle change whose delivery is sent at once (inline); returns the wall time of the send."""
    started = time.monotonic()
    lifecycle(CustomerFactory())
    return time.monotonic() - started


@pytest.mark.parametrize("mode", ["trickle_headers", "trickle_body"])
def test_a_trickling_receiver_holds_a_delivery_no_longer_than_its_deadline(deadline, lifecycle, mode):
    with SlowReceiver(mode, interval=0.2, give_up_after=30) as receiver:
        services.endpoint_create(url=f"{receiver.url}/hooks", event_types=ALL_TYPES)
        took = send_timed(lifecycle)

    assert took < 3 * deadline  # one deadline for connect plus the whole read, not one per read
    delivery = OutboundDelivery.objects.get()
    attempt = delivery.attempt_log.get()
    assert delivery.attempts == 1
    assert f"{deadline} s" in attempt.error  # the log says the deadline cut it off
    if mode == "trickle_headers":  # no status line and headers in time: no answer, retried on the schedule
        assert delivery.status == DeliveryStatus.PENDING and attempt.status_code is None
        assert "Timeout" in attempt.error
    else:  # the receiver said 200 in time: accepted, its slow body cut off
        assert delivery.status == DeliveryStatus.SUCCEEDED and attempt.status_code == 200


def test_a_200_mb_answer_is_not_read_whole(deadline, lifecycle):
    with SlowReceiver("huge", size=200 * 2**20) as receiver:
        services.endpoint_create(url=f"{receiver.url}/hooks", event_types=ALL_TYPES)
        tracemalloc.start()
        try:
            took = send_timed(lifecycle)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert peak < 20 * 2**20  # what the send allocated at its highest (the whole answer: over 400 MB)
    assert took < 3 * deadline
    delivery = OutboundDelivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    attempt = delivery.attempt_log.get()
    assert attempt.response_body == "x" * 1024  # the first kilobyte is kept
    assert "64 KB" in attempt.error  # and the log says reading stopped there
    assert receiver.bytes_sent < 50 * 2**20  # the receiver was hung up on long before the end


class WorkerKilled(BaseException):
    """What the task timeout does to the worker: it ends mid-call, nothing after the call runs."""


def test_a_worker_killed_mid_call_still_uses_up_its_attempt(lifecycle, monkeypatch, django_capture_on_commit_callbacks):
    real_send = PinnedAddressAdapter.send

    def send_then_die(self, request, **kwargs):
        real_send(self, request, **kwargs)  # the receiver got the message ...
        raise WorkerKilled  # ... and the worker was killed before it could record anything

    monkeypatch.setattr(PinnedAddressAdapter, "send", send_then_die)
    with FakeWebhookReceiver() as receiver:
        endpoint = services.endpoint_create(url=f"{receiver.url}/hooks", event_types=ALL_TYPES)
        receiver.secret = endpoint.secret
        with pytest.raises(WorkerKilled):
            lifecycle(CustomerFactory())

        delivery = OutboundDelivery.objects.get()
        assert delivery.attempts == 1  # counted although the worker never came back
        assert "interrupted" in delivery.attempt_log.get().error
        assert services.deliveries_due_ids() == []  # not sent again by the next minute's sweep

        # Every retry is killed too: the delivery still ends when the schedule does, as failed.
        for _ in services.RETRY_SCHEDULE:
            time_passes()
            with pytest.raises(WorkerKilled):
                services.delivery_send(delivery_id=delivery.pk)
        time_passes()
        with django_capture_on_commit_callbacks(execute=True):
            for delivery_id in services.deliveries_due_ids():
                services.delivery_send(delivery_id=delivery_id)

        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.FAILED
        assert delivery.attempts == len(receiver.requests) == len(services.RETRY_SCHEDULE) + 1
        time_passes()
        assert services.deliveries_due_ids() == []  # and it is never sent again


def test_an_endpoint_that_keeps_failing_is_disabled_with_a_notice_in_the_admin(
    lifecycle, client, django_capture_on_commit_callbacks
):
    with FakeWebhookReceiver() as receiver:
        endpoint = services.endpoint_create(url=f"{receiver.url}/hooks", event_types=ALL_TYPES)
        receiver.fail_next(503, times=100)
        lifecycle(CustomerFactory())
        waiting = lifecycle(CustomerFactory())
        for _ in services.RETRY_SCHEDULE:
            time_passes()
            with django_capture_on_commit_callbacks(execute=True):
                for delivery_id in services.deliveries_due_ids():
                    services.delivery_send(delivery_id=delivery_id)
        sent_before = len(receiver.requests)
        lifecycle(CustomerFactory())  # a new change after the endpoint was disabled
        assert len(receiver.requests) == sent_before  # is not sent to it

    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    assert "nothing was accepted" in endpoint.disabled_reason
    statuses = set(OutboundDelivery.objects.exclude(domain_event=waiting).values_list("status", flat=True))
    assert DeliveryStatus.FAILED in statuses

    client.force_login(StaffUserFactory(is_superuser=True))
    for page in ("admin:webhooks_webhookendpoint_changelist", "admin:webhooks_outbounddelivery_changelist"):
        text = client.get(reverse(page)).content.decode()
        assert f"Nothing is being sent to {endpoint.url}" in text
        assert "nothing was accepted" in text


def test_an_endpoint_that_accepted_something_meanwhile_stays_enabled(lifecycle, django_capture_on_commit_callbacks):
    with FakeWebhookReceiver() as receiver:
        endpoint = services.endpoint_create(url=f"{receiver.url}/hooks", event_types=ALL_TYPES)
        receiver.secret = endpoint.secret
        receiver.fail_next(503)
        failing = lifecycle(CustomerFactory())  # its first attempt fails ...
        lifecycle(CustomerFactory())  # ... then another customer's change is accepted
        receiver.fail_next(503, times=len(services.RETRY_SCHEDULE))  # and every retry of the first fails
        for _ in services.RETRY_SCHEDULE:
            time_passes()
            with django_capture_on_commit_callbacks(execute=True):
                for delivery_id in services.deliveries_due_ids():
                    services.delivery_send(delivery_id=delivery_id)

    assert OutboundDelivery.objects.get(domain_event=failing).status == DeliveryStatus.FAILED
    endpoint.refresh_from_db()
    assert endpoint.enabled is True  # one message given up on, but the receiver works
