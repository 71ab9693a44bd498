"""What each Stripe event does to the CRM: records, timeline, lifecycle stage and domain events."""

import time
from datetime import UTC, datetime

import pytest
from djstripe import models as djstripe_models

from billing.models import Subscription
from billing.selectors import subscription_current_for_customer
from customers.models import Customer, DomainEvent, TimelineEvent
from devtools.fakes.stripe.objects import stripe_event
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def kinds(customer) -> list[str]:
    return sorted(TimelineEvent.objects.filter(customer=customer, source="stripe").values_list("kind", flat=True))


def stripe_time(timestamp: int) -> datetime:
    """A Stripe timestamp (Unix seconds) as the aware UTC datetime the CRM should report."""
    return datetime.fromtimestamp(timestamp, UTC)


def domain(name: str) -> list[DomainEvent]:
    return list(DomainEvent.objects.filter(name=name).order_by("id"))


def test_subscription_created_makes_customer_subscription_timeline_stage_and_domain_event(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="Ada@Example.com")
    item = world.subscription["items"]["data"][0]

    response = deliver(stripe_event("customer.subscription.created", world.subscription))

    assert response.status_code == 200
    customer = Customer.objects.get(stripe_customer_id=world.customer["id"])
    assert customer.email == "ada@example.com" and customer.name == "Player One"
    subscription = Subscription.objects.get()
    assert subscription.customer == customer
    assert subscription.stripe_subscription_id == world.subscription["id"]
    assert subscription.djstripe_subscription.id == world.subscription["id"]
    assert (subscription.product_id, subscription.product_name, subscription.price_id) == (
        world.product["id"],
        "ModReady Server",
        world.price["id"],
    )
    assert (subscription.status, subscription.amount, subscription.currency, subscription.interval) == (
        "active",
        1499,
        "eur",
        "month",
    )
    # Since API 2025-03-31.basil the billing period comes from the item.
    assert subscription.current_period_end.timestamp() == item["current_period_end"]
    assert subscription_current_for_customer(customer=customer) == subscription
    assert kinds(customer) == ["subscription.created"]
    customer.refresh_from_db()
    assert customer.lifecycle_stage == "onboarding"
    [event] = domain("subscription.created")
    assert event.customer == customer
    assert event.payload == {
        "subscription_id": world.subscription["id"],
        "product_id": world.product["id"],
        "product_name": "ModReady Server",
        "price_id": world.price["id"],
        "status": "active",
        "amount": 1499,
        "currency": "eur",
        "interval": "month",
        "trial_end": None,
    }


def test_trial_subscription_and_trial_will_end(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="trial@example.com", status="trialing")
    deliver(stripe_event("customer.subscription.created", world.subscription))
    deliver(stripe_event("customer.subscription.trial_will_end", world.subscription))

    customer = Customer.objects.get(email="trial@example.com")
    assert customer.lifecycle_stage == "trial"
    assert kinds(customer) == ["subscription.created", "subscription.trial_will_end"]
    [event] = domain("subscription.trial_will_end")
    assert event.payload["subscription_id"] == world.subscription["id"]
    assert datetime.fromisoformat(event.payload["trial_end"]) == stripe_time(world.subscription["trial_end"])

    # The trial converts: trialing -> active moves the customer on to onboarding.
    fake_stripe.update(world.subscription["id"], status="active", trial_end=world.subscription["trial_end"])
    deliver(stripe_event("customer.subscription.updated", fake_stripe.get(world.subscription["id"])))
    customer.refresh_from_db()
    assert customer.lifecycle_stage == "onboarding"
    [change] = domain("subscription.updated")
    assert (change.payload["from_status"], change.payload["to_status"]) == ("trialing", "active")


def test_cancel_scheduled_then_canceled_with_feedback(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="leaving@example.com")
    sub_id = world.subscription["id"]
    deliver(stripe_event("customer.subscription.created", world.subscription))

    period_end = world.subscription["items"]["data"][0]["current_period_end"]
    fake_stripe.update(sub_id, cancel_at_period_end=True, cancel_at=period_end)
    deliver(stripe_event("customer.subscription.updated", fake_stripe.get(sub_id)))

    customer = Customer.objects.get(email="leaving@example.com")
    assert customer.lifecycle_stage == "at_risk"
    [scheduled] = domain("subscription.cancel_scheduled")
    assert datetime.fromisoformat(scheduled.payload["cancel_at"]) == stripe_time(period_end)

    fake_stripe.update(
        sub_id,
        status="canceled",
        canceled_at=int(time.time()),
        ended_at=int(time.time()),
        cancellation_details={"reason": "cancellation_requested", "feedback": "too_expensive", "comment": "Pricey"},
    )
    deliver(stripe_event("customer.subscription.deleted", fake_stripe.get(sub_id)))

    subscription = Subscription.objects.get()
    assert subscription.status == "canceled"
    assert (
        subscription.cancellation_reason,
        subscription.cancellation_feedback,
        subscription.cancellation_comment,
    ) == (
        "cancellation_requested",
        "too_expensive",
        "Pricey",
    )
    customer.refresh_from_db()
    assert customer.lifecycle_stage == "churned"
    [canceled] = domain("subscription.canceled")
    assert canceled.payload == {
        "subscription_id": sub_id,
        "product_id": world.product["id"],
        "product_name": "ModReady Server",
        "cancellation_reason": "cancellation_requested",
        "feedback": "too_expensive",
        "comment": "Pricey",
    }
    assert "subscription.canceled" in kinds(customer)


def test_cancellation_of_one_subscription_does_not_churn_a_customer_with_another(fake_stripe, deliver):
    first = fake_stripe.add_subscription(email="two@example.com")
    second = fake_stripe.add_subscription(customer=first.customer, product=first.product, price=first.price)
    deliver(stripe_event("customer.subscription.created", first.subscription))
    deliver(stripe_event("customer.subscription.created", second.subscription))
    fake_stripe.update(first.subscription["id"], status="canceled", ended_at=int(time.time()))
    deliver(stripe_event("customer.subscription.deleted", fake_stripe.get(first.subscription["id"])))

    customer = Customer.objects.get(email="two@example.com")
    assert customer.lifecycle_stage == "onboarding"
    assert subscription_current_for_customer(customer=customer).stripe_subscription_id == second.subscription["id"]


def test_payment_failed_then_recovered(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="card@example.com")
    deliver(stripe_event("customer.subscription.created", world.subscription))
    retry_at = int(time.time()) + 3 * 86400
    invoice = fake_stripe.add_invoice(
        subscription=world.subscription, status="open", attempt_count=1, attempted=True, next_payment_attempt=retry_at
    )
    fake_stripe.update(world.subscription["id"], status="past_due")

    deliver(stripe_event("invoice.payment_failed", invoice))

    customer = Customer.objects.get(email="card@example.com")
    assert customer.lifecycle_stage == "at_risk"
    [failed] = domain("payment.failed")
    assert failed.payload == {
        "invoice_id": invoice["id"],
        "subscription_id": world.subscription["id"],
        "product_id": world.product["id"],
        "attempt_count": 1,
        "next_payment_attempt": stripe_time(retry_at).isoformat(),
        "amount_due": 1499,
        "currency": "eur",
        "hosted_invoice_url": invoice["hosted_invoice_url"],
        # No failed payment intent on this invoice in the fake: Stripe gave no reason (billing/declines.py).
        "decline": {"kind": "", "code": "", "reason": ""},
        "dunning_holdout": False,
    }
    timeline = TimelineEvent.objects.get(kind="payment.failed")
    assert "attempt 1" in timeline.summary and "next retry" in timeline.summary

    fake_stripe.update(invoice["id"], status="paid", attempt_count=2, amount_paid=1499, next_payment_attempt=None)
    fake_stripe.update(world.subscription["id"], status="active")
    deliver(stripe_event("invoice.paid", fake_stripe.get(invoice["id"])))

    customer.refresh_from_db()
    assert customer.lifecycle_stage == "active"
    [recovered] = domain("payment.recovered")
    assert recovered.payload == {
        "invoice_id": invoice["id"],
        "subscription_id": world.subscription["id"],
        "product_id": world.product["id"],
    }
    assert not domain("payment.succeeded")


def test_ordinary_paid_invoice_is_a_payment_succeeded(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="payer@example.com")
    invoice = fake_stripe.add_invoice(subscription=world.subscription, status="paid", attempt_count=1, amount_paid=1499)
    # The invoice arrives before the subscription's own event: the subscription is fetched and recorded first.
    deliver(stripe_event("invoice.paid", invoice))

    assert Subscription.objects.filter(stripe_subscription_id=world.subscription["id"]).exists()
    [paid] = domain("payment.succeeded")
    assert paid.payload["invoice_id"] == invoice["id"]
    assert not domain("payment.recovered")


def test_dispute_opened(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="dispute@example.com")
    deliver(stripe_event("customer.subscription.created", world.subscription))
    dispute = fake_stripe.add_dispute(customer=world.customer, reason="fraudulent")

    deliver(stripe_event("charge.dispute.created", dispute))

    customer = Customer.objects.get(email="dispute@example.com")
    assert customer.lifecycle_stage == "at_risk"
    [opened] = domain("dispute.opened")
    assert opened.payload == {
        "dispute_id": dispute["id"],
        "charge_id": dispute["charge"],
        "amount": 1499,
        "currency": "eur",
        "reason": "fraudulent",
    }


def test_dispute_of_an_unknown_customer_is_ignored(fake_stripe, deliver):
    stranger = fake_stripe.add_customer(email="stranger@example.com")
    deliver(stripe_event("charge.dispute.created", fake_stripe.add_dispute(customer=stranger)))
    assert not Customer.objects.exists()
    assert djstripe_models.Dispute.objects.count() == 1


def test_checkout_completed(fake_stripe, deliver):
    product = fake_stripe.add_product(name="VIP reservation")
    price = fake_stripe.add_price(product=product, unit_amount=2500)
    customer = fake_stripe.add_customer(email="vip@example.com", name="Vip Buyer")
    session = fake_stripe.add_checkout_session(customer=customer, prices=[price], mode="payment")

    deliver(stripe_event("checkout.session.completed", session))
    crm_customer = Customer.objects.get(email="vip@example.com")
    assert crm_customer.stripe_customer_id == customer["id"]
    [completed] = domain("checkout.completed")
    assert completed.payload == {
        "session_id": session["id"],
        "mode": "payment",
        "payment_status": "paid",
        "product_ids": [product["id"]],
        "amount_total": 2500,
        "currency": "eur",
        "customer_email": "vip@example.com",
        "stripe_event_type": "checkout.session.completed",
    }
    assert kinds(crm_customer) == ["checkout.completed"]


def test_customer_updated_changes_a_known_customer_only(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="old@example.com")
    deliver(stripe_event("customer.subscription.created", world.subscription))
    fake_stripe.update(world.customer["id"], email="new@example.com", name="New Name")
    stranger = fake_stripe.add_customer(email="stranger@example.com")

    deliver(stripe_event("customer.updated", fake_stripe.get(world.customer["id"])))
    deliver(stripe_event("customer.created", stranger))

    customer = Customer.objects.get(stripe_customer_id=world.customer["id"])
    assert (customer.email, customer.name) == ("new@example.com", "New Name")
    assert not Customer.objects.filter(email="stranger@example.com").exists()


def test_existing_crm_customer_is_linked_not_duplicated(fake_stripe, deliver):
    existing = CustomerFactory(email="known@example.com", lifecycle_stage="trial")
    world = fake_stripe.add_subscription(email="KNOWN@example.com")
    deliver(stripe_event("customer.subscription.created", world.subscription))

    existing.refresh_from_db()
    assert Customer.objects.count() == 1
    assert existing.stripe_customer_id == world.customer["id"]
    assert existing.lifecycle_stage == "onboarding"


def test_other_products_make_no_crm_records(fake_stripe, deliver):
    other = fake_stripe.add_product(name="Some other product", modready=False)
    world = fake_stripe.add_subscription(email="other@example.com", product=other)
    invoice = fake_stripe.add_invoice(subscription=world.subscription, status="open", attempt_count=1)

    deliver(stripe_event("customer.subscription.created", world.subscription))
    deliver(stripe_event("invoice.payment_failed", invoice))

    assert djstripe_models.Subscription.objects.filter(id=world.subscription["id"]).exists()
    assert not Subscription.objects.exists()
    assert not Customer.objects.exists()
    assert not DomainEvent.objects.exists()


def test_product_ids_setting_counts_products_without_the_metadata_flag(fake_stripe, deliver, settings):
    product = fake_stripe.add_product(name="Legacy plan", modready=False)
    settings.MODREADY_STRIPE_PRODUCT_IDS = [product["id"]]
    world = fake_stripe.add_subscription(email="legacy@example.com", product=product)
    deliver(stripe_event("customer.subscription.created", world.subscription))
    assert Subscription.objects.get().product_name == "Legacy plan"


# --- out of order: an older event processed after a newer one does not move anything backwards ---------------------


@pytest.mark.parametrize("order", ["as they happened", "newest first"])
def test_out_of_order_subscription_events(fake_stripe, deliver, order):
    """Stripe's current state decides: dj-stripe re-fetches the subscription for each event."""
    world = fake_stripe.add_subscription(email="order@example.com")
    sub_id = world.subscription["id"]
    steps = [
        ("customer.subscription.created", {}),
        ("customer.subscription.updated", {"cancel_at_period_end": True, "cancel_at": int(time.time()) + 86400 * 20}),
        ("customer.subscription.deleted", {"status": "canceled", "ended_at": int(time.time())}),
    ]
    events = []
    for event_type, changes in steps:
        fake_stripe.update(sub_id, **changes)
        events.append(stripe_event(event_type, fake_stripe.get(sub_id)))
        if order == "as they happened":
            deliver(events[-1])
    if order == "newest first":
        for event in reversed(events):
            deliver(event)
            # The older events that follow must not bring the subscription back.
            assert Subscription.objects.get().status == "canceled"

    subscription = Subscription.objects.get()
    assert subscription.status == "canceled"
    assert subscription.customer.lifecycle_stage == "churned"
    assert TimelineEvent.objects.filter(kind="subscription.canceled").count() == 1
    assert DomainEvent.objects.filter(name="subscription.canceled").count() == 1
    assert DomainEvent.objects.filter(name="subscription.created").count() == (1 if order == "as they happened" else 0)


@pytest.mark.parametrize("order", ["as they happened", "newest first"])
def test_out_of_order_invoice_events(fake_stripe, deliver, order):
    world = fake_stripe.add_subscription(email="inv@example.com")
    deliver(stripe_event("customer.subscription.created", world.subscription))
    invoice = fake_stripe.add_invoice(subscription=world.subscription, status="open", attempt_count=1)
    failed = stripe_event("invoice.payment_failed", invoice)
    if order == "as they happened":
        deliver(failed)
    fake_stripe.update(invoice["id"], status="paid", attempt_count=2, amount_paid=1499)
    deliver(stripe_event("invoice.paid", fake_stripe.get(invoice["id"])))
    if order == "newest first":
        deliver(failed)  # late: the invoice is paid by now, so this changes nothing

    customer = Customer.objects.get(email="inv@example.com")
    assert customer.lifecycle_stage == "active"
    assert DomainEvent.objects.filter(name="payment.recovered").count() == 1
    assert DomainEvent.objects.filter(name="payment.failed").count() == (1 if order == "as they happened" else 0)


def test_checkout_subscription_starts_when_it_leaves_incomplete(fake_stripe, deliver):
    """Checkout creates the subscription `incomplete`; it starts (and is announced) once the first payment succeeds."""
    world = fake_stripe.add_subscription(email="sca@example.com", status="incomplete")
    deliver(stripe_event("customer.subscription.created", world.subscription))

    customer = Customer.objects.get(email="sca@example.com")
    assert Subscription.objects.get().status == "incomplete"
    assert customer.lifecycle_stage == "discovery"
    assert not domain("subscription.created")

    fake_stripe.update(world.subscription["id"], status="active")
    deliver(stripe_event("customer.subscription.updated", fake_stripe.get(world.subscription["id"])))
    deliver(stripe_event("customer.subscription.updated", fake_stripe.get(world.subscription["id"])))

    customer.refresh_from_db()
    assert customer.lifecycle_stage == "onboarding"
    [created] = domain("subscription.created")
    assert created.payload["status"] == "active"
    assert kinds(customer).count("subscription.created") == 1


def test_a_new_customer_takes_the_time_zone_of_their_stripe_country_for_quiet_hours(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="kenji@example.com")
    fake_stripe.update(
        world.customer["id"], address={"country": "JP", "city": "Osaka", "line1": "1-1", "postal_code": "530"}
    )
    deliver(stripe_event("customer.subscription.created", world.subscription))
    customer = Customer.objects.get(stripe_customer_id=world.customer["id"])
    assert customer.time_zone == "Asia/Tokyo"
    # A zone set since (by the customer or staff) is never overwritten by Stripe's country.
    Customer.objects.filter(pk=customer.pk).update(time_zone="Europe/London")
    deliver(stripe_event("customer.updated", fake_stripe.update(world.customer["id"], name="Kenji S")))
    customer.refresh_from_db()
    assert customer.time_zone == "Europe/London" and customer.name == "Kenji S"
