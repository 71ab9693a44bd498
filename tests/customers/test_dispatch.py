"""Domain-event dispatch: prompt for every event of a customer, and one drain task for a burst, not one per event."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from customers import events
from customers.models import DispatchWakeup, DomainEvent
from tests.customers.factories import CustomerFactory
from tests.row_locks import row_locked_elsewhere


@pytest.fixture
def received():
    calls = []

    def handler(event):
        calls.append(event.key)

    events.subscriber(events.TRIAL_STARTED)(handler)
    yield calls
    events._handlers[events.TRIAL_STARTED].remove(handler)


@pytest.mark.django_db
def test_a_burst_of_events_puts_one_drain_task_on_the_broker_and_the_drain_dispatches_them_all(
    received, django_capture_on_commit_callbacks
):
    customers = CustomerFactory.create_batch(3)
    with mock.patch("django_q.tasks.async_task") as enqueue:
        for batch in range(2):  # two commits, e.g. two webhook deliveries, each running its on-commit callbacks
            with django_capture_on_commit_callbacks(execute=True) as callbacks:
                for n in range(150):
                    events.domain_event_publish(
                        name=events.TRIAL_STARTED, key=f"burst:{batch}:{n}", customer=customers[n % 3]
                    )
            assert len(callbacks) == 150
    assert enqueue.call_count == 1
    assert enqueue.call_args.args == ("customers.tasks.domain_events_drain_task",)
    assert received == []

    assert events.domain_events_drain() == 300
    assert len(received) == 300
    assert not DomainEvent.objects.filter(dispatched_at__isnull=True).exists()
    # The drain took the wake-up: the next publish asks for a new drain.
    with mock.patch("django_q.tasks.async_task") as enqueue:
        assert events.dispatch_wake() is True
    assert enqueue.call_count == 1


@pytest.mark.django_db
def test_a_lost_wake_up_is_renewed_after_a_while():
    DispatchWakeup.objects.create(name=events.WAKEUP_NAME, requested_at=timezone.now() - timedelta(seconds=30))
    with mock.patch("django_q.tasks.async_task") as enqueue:
        assert events.dispatch_wake() is False  # a drain is waiting on the broker
        DispatchWakeup.objects.update(requested_at=timezone.now() - events.STALE_WAKEUP - timedelta(seconds=1))
        assert events.dispatch_wake() is True  # that one was lost (the process died before enqueuing it)
    assert enqueue.call_count == 1


@pytest.mark.django_db
def test_a_failing_handler_does_not_stop_the_drain(received):
    customer = CustomerFactory()

    def broken(event):
        if event.key == "bad":
            raise RuntimeError("boom")

    events.subscriber(events.TRIAL_STARTED)(broken)
    try:
        with mock.patch("django_q.tasks.async_task"):
            for key in ("bad", "good-1", "good-2"):
                events.domain_event_publish(name=events.TRIAL_STARTED, key=key, customer=customer)
        assert events.domain_events_drain() == 2
    finally:
        events._handlers[events.TRIAL_STARTED].remove(broken)
    bad = DomainEvent.objects.get(key="bad")
    assert bad.dispatched_at is None and "boom" in bad.last_error and bad.next_attempt_at > timezone.now()
    assert sorted(received) == ["bad", "good-1", "good-2"]


@pytest.mark.django_db(transaction=True)
def test_dispatch_locks_only_the_event_so_other_work_on_the_customer_does_not_delay_it(received):
    """Another transaction holding the customer row (a stage move, another event's handler) must not make the event
    look taken: with the customer row locked too, SKIP LOCKED skipped it until the minute sweep."""
    customer = CustomerFactory()
    with mock.patch("django_q.tasks.async_task"):
        event, _ = events.domain_event_publish(name=events.TRIAL_STARTED, key="locked-customer", customer=customer)
    with row_locked_elsewhere(customer):
        assert events.domain_event_dispatch(event_id=event.pk) is True
    assert received == ["locked-customer"]


@pytest.mark.django_db
def test_the_minute_sweep_dispatches_what_is_due_and_leaves_the_waiting_drain_its_wake_up(received):
    from customers.tasks import domain_events_dispatch_pending

    customer = CustomerFactory()
    with mock.patch("django_q.tasks.async_task") as enqueue:
        events.domain_event_publish(name=events.TRIAL_STARTED, key="swept", customer=customer)
        assert events.dispatch_wake() is True  # a drain is enqueued...
        assert domain_events_dispatch_pending() == 1  # ...but the sweep gets there first
        assert events.dispatch_wake() is False  # that drain is still waiting: no second one
    assert enqueue.call_count == 1
    assert received == ["swept"]


@pytest.mark.django_db
def test_a_batch_handler_gets_the_batch_and_a_bad_event_holds_back_only_itself():
    customers = CustomerFactory.create_batch(2)
    calls = []

    def batch_handler(batch):
        calls.append([event.key for event in batch])
        if any(event.key == "bad" for event in batch):
            raise RuntimeError("boom")

    events.subscriber(events.TRIAL_STARTED, batch=True)(batch_handler)
    try:
        with mock.patch("django_q.tasks.async_task"):
            for n, key in enumerate(("first", "bad", "last")):
                events.domain_event_publish(name=events.TRIAL_STARTED, key=key, customer=customers[n % 2])
        assert events.domain_events_drain() == 2
    finally:
        events._handlers[events.TRIAL_STARTED].remove(batch_handler)
        events._batch_handlers.discard(batch_handler)
    # The batch at once, in order; rolled back, then one event at a time.
    assert calls == [["first", "bad", "last"], ["first"], ["bad"], ["last"]]
    bad = DomainEvent.objects.get(key="bad")
    assert bad.dispatched_at is None and "boom" in bad.last_error and bad.attempts == 1
    assert DomainEvent.objects.filter(dispatched_at__isnull=False, attempts=1).count() == 2
