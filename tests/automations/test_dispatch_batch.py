"""Dispatch in batches: a burst of events enrolls for a constant number of queries, with the one-by-one outcome."""

from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automations.models import EmailQueueItem, Enrollment, EnrollmentStatus, QueueStatus
from billing.models import SubscriptionStatus
from customers import events
from customers.models import DomainEvent, TimelineEvent
from tests.billing.factories import SubscriptionFactory
from tests.customers.factories import CustomerFactory

from .conftest import subscription_payload

pytestmark = pytest.mark.django_db


def publish_without_dispatch(name, customer, payload, key):
    with mock.patch("django_q.tasks.async_task"):
        event, _ = events.domain_event_publish(name=name, key=key, customer=customer, payload=payload)
    return event


def burst(size, prefix):
    """`size` new subscriptions (as billing records them), each with its subscription.created event pending."""
    subscriptions = SubscriptionFactory.create_batch(size)
    for subscription in subscriptions:
        publish_without_dispatch(
            events.SUBSCRIPTION_CREATED,
            subscription.customer,
            subscription_payload(subscription.stripe_subscription_id),
            key=f"{prefix}:{subscription.stripe_subscription_id}",
        )
    return subscriptions


def queries_to_drain():
    with CaptureQueriesContext(connection) as captured:
        dispatched = events.domain_events_drain(batch_size=100)
    return dispatched, len(captured)


def test_a_burst_of_events_costs_the_same_number_of_queries_whatever_its_size():
    small = burst(4, "small")
    assert queries_to_drain()[0] == 4
    large = burst(40, "large")
    dispatched, large_queries = queries_to_drain()
    assert dispatched == 40
    burst(4, "small-again")
    assert queries_to_drain() == (4, large_queries)

    # Every customer is in Welcome once, its first email due now and the setup tips queued behind it.
    for subscription in [*small, *large]:
        enrollment = Enrollment.objects.get(customer=subscription.customer)
        assert enrollment.rule.name == "Welcome" and enrollment.status == EnrollmentStatus.ACTIVE
        assert enrollment.subscription_id == subscription.stripe_subscription_id
        items = list(enrollment.queue_items.order_by("step__order"))
        assert [item.status for item in items] == [QueueStatus.PENDING, QueueStatus.PENDING]
        assert items[0].scheduled_at <= timezone.now() < items[1].scheduled_at
        assert items[0].recipient == subscription.customer.email
    assert not DomainEvent.objects.filter(dispatched_at__isnull=True).exists()


def test_a_batch_dispatched_again_enrolls_nobody_twice():
    burst(5, "again")
    events.domain_events_drain()
    DomainEvent.objects.update(dispatched_at=None, next_attempt_at=timezone.now())  # at least once: a crash, a redo
    assert events.domain_events_drain() == 5
    assert Enrollment.objects.count() == 5
    assert EmailQueueItem.objects.count() == 10


def test_a_customers_events_in_one_batch_apply_in_their_order():
    """Cancelled, then subscribed again, both in one batch: win-back starts and the new subscription ends it. In the
    other order, win-back would still be running."""
    customer = CustomerFactory()
    others = SubscriptionFactory.create_batch(3)
    SubscriptionFactory(customer=customer, stripe_subscription_id="sub_old", status=SubscriptionStatus.CANCELED)
    SubscriptionFactory(customer=customer, stripe_subscription_id="sub_new")
    publish_without_dispatch(
        events.SUBSCRIPTION_CANCELED, customer, {"subscription_id": "sub_old", "product_id": "prod_modded"}, "c1"
    )
    for other in others:  # other customers' events in between
        publish_without_dispatch(
            events.SUBSCRIPTION_CREATED,
            other.customer,
            subscription_payload(other.stripe_subscription_id),
            f"o{other.pk}",
        )
    publish_without_dispatch(events.SUBSCRIPTION_CREATED, customer, subscription_payload("sub_new"), "c2")

    assert events.domain_events_drain(batch_size=100) == 5
    win_back = Enrollment.objects.get(customer=customer, rule__name="Win-back")
    assert win_back.status == EnrollmentStatus.EXITED and "c2" in win_back.exit_reason
    assert set(win_back.queue_items.values_list("status", flat=True)) == {QueueStatus.CANCELLED}
    welcome = Enrollment.objects.get(customer=customer, rule__name="Welcome")
    assert welcome.status == EnrollmentStatus.ACTIVE and welcome.subscription_id == "sub_new"
    assert Enrollment.objects.filter(rule__name="Welcome").count() == 4


def test_a_trigger_no_longer_true_starts_nothing_and_a_customer_without_address_is_noted():
    """In one batch: a welcome for a subscription that has ended since, and one for a customer without an email."""
    ended = SubscriptionFactory(status=SubscriptionStatus.CANCELED)
    no_email = SubscriptionFactory(customer=CustomerFactory(email=""))
    fine = SubscriptionFactory()
    for subscription in (ended, no_email, fine):
        publish_without_dispatch(
            events.SUBSCRIPTION_CREATED,
            subscription.customer,
            subscription_payload(subscription.stripe_subscription_id),
            key=subscription.stripe_subscription_id,
        )
    assert events.domain_events_drain(batch_size=100) == 3
    assert list(Enrollment.objects.values_list("customer_id", flat=True)) == [fine.customer_id]
    assert TimelineEvent.objects.filter(customer=no_email.customer, kind="automation.skipped_no_email").count() == 1
    assert not TimelineEvent.objects.filter(customer=ended.customer, kind="automation.skipped_no_email").exists()
