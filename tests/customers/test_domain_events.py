import pytest
from django.db import transaction

from customers import events
from customers.models import DomainEvent
from customers.tasks import domain_events_dispatch_pending

pytestmark = pytest.mark.django_db


@pytest.fixture
def received():
    """Subscribe a recording handler for payment.failed for the length of one test."""
    calls = []

    def handler(event):
        calls.append(event.key)

    events.subscriber(events.PAYMENT_FAILED)(handler)
    yield calls
    events._handlers[events.PAYMENT_FAILED].remove(handler)


def test_published_event_reaches_subscribers_after_commit(customer, received, run_on_commit):
    with run_on_commit():
        event, created = events.domain_event_publish(
            name=events.PAYMENT_FAILED, key="stripe:evt_1:payment.failed", customer=customer, payload={"attempt": 1}
        )
    assert created
    assert received == ["stripe:evt_1:payment.failed"]
    event.refresh_from_db()
    assert event.dispatched_at is not None and event.attempts == 1


def test_nothing_is_dispatched_when_the_transaction_rolls_back(customer, received, run_on_commit):
    with run_on_commit():  # runs the on-commit callbacks that survive, as the outer commit would
        with pytest.raises(RuntimeError), transaction.atomic():
            events.domain_event_publish(name=events.PAYMENT_FAILED, key="rolled-back", customer=customer)
            raise RuntimeError("the change that announced the event failed")
        events.domain_event_publish(name=events.PAYMENT_FAILED, key="committed", customer=customer)

    assert received == ["committed"]
    assert not DomainEvent.objects.filter(key="rolled-back").exists()


def test_publishing_the_same_key_twice_stores_and_delivers_once(customer, received, run_on_commit):
    with run_on_commit():
        events.domain_event_publish(name=events.PAYMENT_FAILED, key="same", customer=customer)
        _, created_again = events.domain_event_publish(name=events.PAYMENT_FAILED, key="same", customer=customer)
    assert not created_again
    assert DomainEvent.objects.filter(key="same").count() == 1
    assert received == ["same"]


def test_a_failing_subscriber_keeps_the_event_pending_with_its_error_and_others_still_run(customer, received):
    def broken(event):
        raise RuntimeError("mail provider exploded")

    events.subscriber(events.PAYMENT_FAILED)(broken)
    try:
        event, _ = events.domain_event_publish(name=events.PAYMENT_FAILED, key="k-broken", customer=customer)
        assert events.domain_event_dispatch(event_id=event.pk) is False
    finally:
        events._handlers[events.PAYMENT_FAILED].remove(broken)

    event.refresh_from_db()
    assert event.dispatched_at is None
    assert "mail provider exploded" in event.last_error
    assert event.next_attempt_at > event.created_at
    assert received == ["k-broken"]


def test_the_sweep_dispatches_events_a_crash_left_behind(customer, received):
    event, _ = events.domain_event_publish(name=events.PAYMENT_FAILED, key="orphan", customer=customer)
    DomainEvent.objects.filter(pk=event.pk).update(next_attempt_at=event.created_at.replace(year=2020))

    assert domain_events_dispatch_pending() == 1
    assert received == ["orphan"]
    assert domain_events_dispatch_pending() == 0


def test_unknown_event_names_are_refused(customer):
    with pytest.raises(ValueError):
        events.domain_event_publish(name="payment.exploded", key="x", customer=customer)
    with pytest.raises(ValueError):
        events.subscriber("payment.exploded")
