"""The Onboarding -> Active rule (customers/lifecycle.py), both paths: the first renewal paid (through Stripe's
invoice.paid, here) and thirty settled days in Onboarding (the daily schedule)."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from customers.models import Customer, StageTransition
from customers.services import customer_move_stage
from customers.tasks import onboarding_settle_task
from devtools.clock import as_of
from devtools.fakes.stripe.objects import stripe_event
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

DAY = 86400


def subscribed(fake_stripe, deliver, *, days_ago: float) -> tuple[dict, Customer]:
    """A customer whose subscription started `days_ago` (onboarding since then), as Stripe told the CRM then."""
    created = int(time.time() - days_ago * DAY)
    world = fake_stripe.add_subscription(email="new@example.com", created=created)
    with as_of(datetime.fromtimestamp(created, UTC)):  # delivered back then, when the subscription was new
        deliver(stripe_event("customer.subscription.created", world.subscription, created=created))
    customer = Customer.objects.get(stripe_customer_id=world.customer["id"])
    assert customer.lifecycle_stage == "onboarding"
    assert customer.stage_changed_at == datetime.fromtimestamp(created, UTC)
    return world, customer


def paid_invoice(fake_stripe, world, *, billing_reason: str) -> dict:
    now = int(time.time())
    return fake_stripe.add_invoice(
        subscription=world.subscription,
        status="paid",
        attempt_count=1,
        amount_paid=1499,
        billing_reason=billing_reason,
        status_transitions={"finalized_at": now, "paid_at": now, "marked_uncollectible_at": None, "voided_at": None},
    )


def stage(customer: Customer) -> str:
    customer.refresh_from_db()
    return customer.lifecycle_stage


def test_the_first_renewal_paid_makes_an_onboarding_customer_active_once(fake_stripe, deliver):
    world, customer = subscribed(fake_stripe, deliver, days_ago=30)
    invoice = paid_invoice(fake_stripe, world, billing_reason="subscription_cycle")

    deliver(stripe_event("invoice.paid", invoice))
    deliver(stripe_event("invoice.paid", invoice))  # Stripe's redelivery under a new event id

    assert stage(customer) == "active"
    move = StageTransition.objects.get(customer=customer, to_stage="active")
    assert (move.from_stage, move.cause) == ("onboarding", "first renewal paid")
    assert move.occurred_at == datetime.fromtimestamp(invoice["status_transitions"]["paid_at"], UTC)


@pytest.mark.parametrize(
    ("billing_reason", "days_ago"),
    [
        ("subscription_create", 30),  # the first invoice, not a renewal
        ("subscription_update", 30),  # a plan change's proration
        ("subscription_cycle", 1),  # the charge that ends a trial: billed as a cycle, but the first payment
    ],
)
def test_other_paid_invoices_leave_the_customer_in_onboarding(fake_stripe, deliver, billing_reason, days_ago):
    world, customer = subscribed(fake_stripe, deliver, days_ago=days_ago)

    deliver(stripe_event("invoice.paid", paid_invoice(fake_stripe, world, billing_reason=billing_reason)))

    assert stage(customer) == "onboarding"


def test_a_renewal_paid_moves_nobody_who_is_not_in_onboarding(fake_stripe, deliver):
    world, customer = subscribed(fake_stripe, deliver, days_ago=30)
    # A cancellation is scheduled: the customer is at risk, and paying the period before it ends does not save them.
    customer_move_stage(customer=customer, to_stage="at_risk", cause="cancellation scheduled")

    deliver(stripe_event("invoice.paid", paid_invoice(fake_stripe, world, billing_reason="subscription_cycle")))

    assert stage(customer) == "at_risk"
    assert not StageTransition.objects.filter(customer=customer, to_stage="active").exists()


def onboarding_since(days: float, **fields) -> Customer:
    customer = CustomerFactory(lifecycle_stage="discovery", **fields)
    since = timezone.now() - timedelta(days=days)
    customer_move_stage(customer=customer, to_stage="purchase", cause="test", occurred_at=since)
    customer_move_stage(customer=customer, to_stage="onboarding", cause="test", occurred_at=since)
    customer.refresh_from_db()
    return customer


def test_thirty_days_in_onboarding_make_a_customer_active_as_of_that_day_once():
    settled = onboarding_since(31)
    newcomer = onboarding_since(29)
    settled_since = settled.stage_changed_at

    assert onboarding_settle_task() == 1
    assert onboarding_settle_task() == 0

    assert (stage(settled), stage(newcomer)) == ("active", "onboarding")
    move = StageTransition.objects.get(customer=settled, to_stage="active")
    assert move.occurred_at == settled_since + timedelta(days=30)
    assert move.cause.startswith("onboarding settled")


@pytest.mark.parametrize("elsewhere", ["at_risk", "churned"])
def test_the_daily_rule_leaves_customers_in_other_stages_alone(elsewhere):
    customer = onboarding_since(60)
    customer_move_stage(
        customer=customer, to_stage=elsewhere, cause="test", occurred_at=timezone.now() - timedelta(days=45)
    )

    assert onboarding_settle_task() == 0

    assert stage(customer) == elsewhere


def test_a_rule_for_one_stage_does_not_move_a_customer_who_left_it_meanwhile():
    customer = onboarding_since(40)
    stale = Customer.objects.get(pk=customer.pk)  # read while still in onboarding
    customer_move_stage(customer=customer, to_stage="at_risk", cause="payment failed")

    moved = customer_move_stage(customer=stale, to_stage="active", from_stage="onboarding", cause="rule")

    assert moved is None
    assert stage(customer) == "at_risk"
