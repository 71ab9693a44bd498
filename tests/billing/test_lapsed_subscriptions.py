"""A subscription first seen unpaid or paused still moves the customer through the journey, so later moves work."""

import pytest

from customers.models import Customer, DomainEvent
from devtools.fakes.stripe.objects import stripe_event

pytestmark = pytest.mark.django_db


# A paused subscription is a trial that ended without a payment method: nobody paid, so its path never passes
# Purchase (the provisioning panel reads customer.purchase as "activate"), and paying afterwards is the purchase.
PATHS = {
    "unpaid": (["purchase", "active", "at_risk"], "active"),
    "paused": (["trial", "at_risk"], "onboarding"),
}


@pytest.mark.parametrize("status", ["unpaid", "paused"])
def test_first_seen_lapsed_subscription_is_at_risk_and_recovers_to_active(fake_stripe, deliver, status):
    path, after_paying = PATHS[status]
    world = fake_stripe.add_subscription(email=f"{status}@example.com", status=status)
    deliver(stripe_event("customer.subscription.created", world.subscription))

    customer = Customer.objects.get(email=f"{status}@example.com")
    assert customer.lifecycle_stage == "at_risk"
    assert list(customer.stage_transitions.order_by("id").values_list("to_stage", flat=True)) == path
    assert not DomainEvent.objects.filter(name="subscription.created").exists()  # no welcome for a lapsed one

    fake_stripe.update(world.subscription["id"], status="active")
    deliver(stripe_event("customer.subscription.updated", fake_stripe.get(world.subscription["id"])))
    customer.refresh_from_db()
    assert customer.lifecycle_stage == after_paying


def test_an_active_subscription_becoming_paused_is_at_risk(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="pausing@example.com")
    deliver(stripe_event("customer.subscription.created", world.subscription))
    fake_stripe.update(world.subscription["id"], status="paused")
    deliver(stripe_event("customer.subscription.updated", fake_stripe.get(world.subscription["id"])))
    assert Customer.objects.get(email="pausing@example.com").lifecycle_stage == "at_risk"


def test_a_paying_customer_whose_subscription_resumes_after_a_pause_is_active_again_not_a_new_purchase(
    fake_stripe, deliver
):
    world = fake_stripe.add_subscription(email="resumes@example.com")
    deliver(stripe_event("customer.subscription.created", world.subscription))
    fake_stripe.update(world.subscription["id"], status="paused")
    deliver(stripe_event("customer.subscription.updated", fake_stripe.get(world.subscription["id"])))
    fake_stripe.update(world.subscription["id"], status="active")
    deliver(stripe_event("customer.subscription.updated", fake_stripe.get(world.subscription["id"])))

    customer = Customer.objects.get(email="resumes@example.com")
    path = list(customer.stage_transitions.order_by("id").values_list("to_stage", flat=True))
    assert customer.lifecycle_stage == "active" and path.count("purchase") == 1
