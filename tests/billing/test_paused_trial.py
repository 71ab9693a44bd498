"""A trial that ends without a payment method is paused by Stripe
(https://docs.stripe.com/billing/subscriptions/trials#create-free-trials-without-payment): the customer lands in
At risk (docs/billing.md), whether Stripe's events reach us in real time or late, and in whichever order.

Through the signed webhook path: dj-stripe re-fetches the subscription for each event, so an event processed late sees
the subscription already paused."""

import time

import pytest

from customers.models import Customer
from devtools.fakes.stripe.objects import stripe_event

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("order", ["in real time", "late", "late, newest first"])
def test_a_paused_trial_lands_in_at_risk_whatever_the_order(fake_stripe, deliver, order):
    world = fake_stripe.add_subscription(email="paused@example.com", status="trialing")
    sub_id = world.subscription["id"]
    created = stripe_event("customer.subscription.created", fake_stripe.get(sub_id))
    if order == "in real time":
        deliver(created)
        assert Customer.objects.get(email="paused@example.com").lifecycle_stage == "trial"

    # The trial ends with no payment method: Stripe pauses the subscription.
    fake_stripe.update(sub_id, status="paused", trial_end=int(time.time()) - 60)
    paused = stripe_event(
        "customer.subscription.updated", fake_stripe.get(sub_id), previous_attributes={"status": "trialing"}
    )
    if order == "in real time":
        deliver(paused)
    elif order == "late":
        deliver(created)
        deliver(paused)
    else:
        deliver(paused)
        deliver(created)

    customer = Customer.objects.get(email="paused@example.com")
    assert customer.lifecycle_stage == "at_risk"
    assert customer.subscriptions.get().status == "paused"
    # Nobody paid: the path never passes Purchase, so the provisioning panel is never told to activate a server.
    path = list(customer.stage_transitions.order_by("occurred_at", "id").values_list("to_stage", flat=True))
    assert "purchase" not in path and path[-1] == "at_risk"


TRIALING, PAUSED = {"status": "trialing"}, {"status": "paused"}


def test_a_paused_trial_that_then_pays_is_a_purchase(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="payslater@example.com", status="trialing")
    sub_id = world.subscription["id"]
    deliver(stripe_event("customer.subscription.created", fake_stripe.get(sub_id)))
    fake_stripe.update(sub_id, status="paused")
    deliver(stripe_event("customer.subscription.updated", fake_stripe.get(sub_id), previous_attributes=TRIALING))
    fake_stripe.update(sub_id, status="active")
    deliver(stripe_event("customer.subscription.updated", fake_stripe.get(sub_id), previous_attributes=PAUSED))

    customer = Customer.objects.get(email="payslater@example.com")
    path = list(customer.stage_transitions.order_by("occurred_at", "id").values_list("to_stage", flat=True))
    assert path[-3:] == ["at_risk", "purchase", "onboarding"]
