"""Every call to Stripe, ours and dj-stripe's, carries the pinned API version (STRIPE_API_VERSION).

Real Stripe reads a request without `Stripe-Version` on the account's default version and one with another version
in that version's shapes, so an unpinned call can return objects the code does not expect
(https://docs.stripe.com/api/versioning). The fake records the header of every request; these journeys play what
production does: webhooks that make dj-stripe re-fetch the object, a payment failure that asks Stripe for the
subscription's current state, a dispute, a checkout with its line items, a customer update, and the daily sync."""

import time

import pytest

from billing.sync import stripe_sync_run
from devtools.fakes.stripe.objects import stripe_event

pytestmark = pytest.mark.django_db


def unpinned(fake_stripe, version: str) -> list[tuple[str, str, str]]:
    return [call for call in fake_stripe.api_versions() if call[2] != version]


def test_webhook_journeys_and_the_daily_sync_call_stripe_on_the_pinned_version(fake_stripe, deliver, settings):
    world = fake_stripe.add_subscription(email="pinned@example.com")
    deliver(stripe_event("customer.subscription.created", world.subscription))
    invoice = fake_stripe.add_invoice(
        subscription=world.subscription, status="open", attempt_count=1, next_payment_attempt=int(time.time()) + 86400
    )
    fake_stripe.update(world.subscription["id"], status="past_due")
    deliver(stripe_event("invoice.payment_failed", invoice))
    fake_stripe.update(invoice["id"], status="paid", attempt_count=2, amount_paid=1499, next_payment_attempt=None)
    fake_stripe.update(world.subscription["id"], status="active")
    deliver(stripe_event("invoice.paid", fake_stripe.get(invoice["id"])))
    deliver(stripe_event("charge.dispute.created", fake_stripe.add_dispute(customer=world.customer)))
    deliver(stripe_event("customer.updated", fake_stripe.update(world.customer["id"], name="Renamed")))

    product = fake_stripe.add_product(name="VIP reservation")
    price = fake_stripe.add_price(product=product, unit_amount=2500)
    buyer = fake_stripe.add_customer(email="vip@example.com", name="Vip Buyer")
    session = fake_stripe.add_checkout_session(customer=buyer, prices=[price], mode="payment")
    deliver(stripe_event("checkout.session.completed", session))

    fake_stripe.add_subscription(email="only-the-sync-knows@example.com")
    summary = stripe_sync_run(retry_delay=0)
    assert summary.errors == 0

    calls = fake_stripe.api_versions()
    assert len(calls) >= 10  # the journeys did call Stripe
    bad = unpinned(fake_stripe, settings.STRIPE_API_VERSION)
    assert bad == [], "\n".join(map(str, bad))


def test_a_checkout_whose_line_items_need_their_own_call_is_pinned_too(fake_stripe, deliver, settings):
    product = fake_stripe.add_product(name="Bundle", modready=True)
    prices = [fake_stripe.add_price(product=product, unit_amount=100 + n) for n in range(12)]
    buyer = fake_stripe.add_customer(email="bundle@example.com")
    # More items than the expanded page holds (10): the handler lists them with its own, paged, call.
    session = fake_stripe.add_checkout_session(customer=buyer, prices=prices, mode="payment")
    deliver(stripe_event("checkout.session.completed", session))

    assert any(path.endswith("/line_items") for _, path, _ in fake_stripe.api_versions())
    bad = unpinned(fake_stripe, settings.STRIPE_API_VERSION)
    assert bad == [], "\n".join(map(str, bad))
