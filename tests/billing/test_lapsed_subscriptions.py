"""A subscription first seen unpaid or paused still moves the customer through the journey, so later moves work."""

import pytest

from customers.models import Customer, DomainEvent
from tests.fakes.stripe import stripe_event

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", ["unpaid", "paused"])
def test_first_seen_lapsed_subscription_is_at_risk_and_recovers_to_active(fake_stripe, deliver, status):
    world = fake_stripe.add_subscription(email=f"{status}@example.com", status=status)
    deliver(stripe_event("customer.subscription.created", world.subscription))

    customer = Customer.objects.get(email=f"{status}@example.com")
    assert customer.lifecycle_stage == "at_risk"
    assert list(customer.stage_transitions.order_by("id").values_list("to_stage", flat=True)) == [
        "purchase",
        "active",
        "at_risk",
    ]
    assert not DomainEvent.objects.filter(name="subscription.created").exists()  # no welcome for a lapsed one

    fake_stripe.update(world.subscription["id"], status="active")
    deliver(stripe_event("customer.subscription.updated", fake_stripe.get(world.subscription["id"])))
    customer.refresh_from_db()
    assert customer.lifecycle_stage == "active"


def test_an_active_subscription_becoming_paused_is_at_risk(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="pausing@example.com")
    deliver(stripe_event("customer.subscription.created", world.subscription))
    fake_stripe.update(world.subscription["id"], status="paused")
    deliver(stripe_event("customer.subscription.updated", fake_stripe.get(world.subscription["id"])))
    assert Customer.objects.get(email="pausing@example.com").lifecycle_stage == "at_risk"
