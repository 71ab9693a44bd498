"""A replay of 1,000 random cancel-flow paths against the in-process fake Stripe: reasons, accepting or declining
each offer, abandoning, double submits, reloads, Stripe answers lost (5xx), Stripe's own time passing (pauses that
end, cancellations that take effect), and Stripe's events shuffled and duplicated. It ends with Stripe, the CRM and
the outbound webhooks in agreement for every customer, and exactly one Stripe change per decided session.

Speed: the fake answers in the process (no socket) and each event is processed by billing's handler write
(`subscription_apply_stripe_state` with Stripe's current object, which is what the webhook task applies after
dj-stripe has mirrored it); the signature check, the store and dj-stripe's mirror are covered by the webhook tests
and by tests/billing/test_subscription_changes.py, which deliver the same events through the endpoint.

Measured 2026-12-07 on the shared 2-core machine under a load average of about 22 (six test suites at once):
974 s for the 1,000 paths, 20 to 42 s for 100 (CANCEL_REPLAY_PATHS=100), about 115 queries per path, nearly all
of the time waiting on PostgreSQL. At that load it is far from the minute it should stay well under; it has not been
measured on an idle machine."""

import os
import random
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Subscription
from billing.retention import changes, stripe_calls
from billing.retention.models import CancelSession, ChangeStatus, SaveOffer
from billing.retention.sessions import (
    CancelSessionRefused,
    cancel_session_create,
    cancel_session_decide,
    cancel_session_reason_give,
)
from billing.services.subscriptions import subscription_apply_stripe_state
from billing.stripe_objects import subscription_state
from customers.events import domain_events_drain
from customers.lifecycle import Stage
from customers.models import Customer
from devtools.fakes.stripe.in_process import installed
from devtools.fakes.stripe.server import FakeStripe
from devtools.fakes.stripe.subscription_writes import FEEDBACK
from webhooks.models import OutboundDelivery

from .cancel_world import panel_endpoint

pytestmark = pytest.mark.django_db
PATHS = int(os.environ.get("CANCEL_REPLAY_PATHS", "1000"))  # a smaller run for profiling
CUSTOMERS = PATHS * 8 // 10  # a fifth of the paths are second visits
SEED = 2112


@pytest.fixture
def stripe_in_process(settings, monkeypatch):
    # stripe-python waits about half a second before its own retry: here a lost answer is sent again by the next
    # click or reload instead, as it would be after both tries failed.
    monkeypatch.setattr(stripe_calls, "CHANGE_RETRIES", 0)
    settings.MODREADY_STRIPE_PRODUCT_IDS = []
    settings.BILLING_CANCEL_HOLDOUT_PERCENT = 10
    fake = FakeStripe()  # never served: answered in the process
    with installed(fake):
        yield fake
    fake._server.server_close()


def _process(fake: FakeStripe, events: list[dict], rng: random.Random) -> None:
    """Stripe's delivery: at least once, in any order. Each event is processed against Stripe's state as it is at
    processing time (the webhook task re-fetches the object), so an old event applied late changes nothing."""
    deliveries = events + [event for event in events if rng.random() < 0.3]
    rng.shuffle(deliveries)
    for event in deliveries:
        current = fake.get(event["data"]["object"]["id"])
        subscription_apply_stripe_state(
            stripe_subscription=current,
            product_lookup=lambda product_id: fake.objects["products"].get(product_id),
            stripe_customer=fake.objects["customers"].get(current["customer"]),
        )


def _take_emitted(fake: FakeStripe) -> list[dict]:
    events, fake.emitted[:] = list(fake.emitted), []
    return events


def _walk(subscription: Subscription, fake: FakeStripe, rng: random.Random, *, now) -> None:
    """One customer's visit: a reason, maybe a change of mind, then accept, cancel or leave; clicks repeated."""
    try:
        session = cancel_session_create(subscription=subscription, now=now)
    except CancelSessionRefused:
        return
    for _ in range(rng.choice([1, 1, 2])):  # the back button to the reason
        cancel_session_reason_give(session_id=session.pk, reason=rng.choice(FEEDBACK), comment=rng.choice(["", "meh"]))
    session.refresh_from_db()
    roll = rng.random()
    if roll < 0.1:
        return  # left the page
    choice = "accept" if session.offer_shown and roll < 0.6 else "cancel"
    if rng.random() < 0.15:
        fake.fail_next(503)  # Stripe's answer lost: the change stays applying until a click or reload sends it again
    for _ in range(rng.choice([1, 1, 2, 3])):  # double submits
        decided = cancel_session_decide(session_id=session.pk, choice=rng.choice([choice, choice, "cancel"]))
        changes.change_send(change_id=decided.change_id)
    for _ in range(rng.choice([0, 1, 2])):  # reloads send an unanswered change again
        changes.change_send(change_id=decided.change_id)
    changes.change_send(change_id=decided.change_id)  # the last reload


def _world(fake: FakeStripe, count: int) -> None:
    product = fake.add_product(name="ModReady Server")
    price = fake.add_price(product=product, unit_amount=1499)
    cheaper = fake.add_price(product=product, unit_amount=799)
    SaveOffer.objects.create(reason="too_expensive", kind="discount", discount_percent=30, discount_months=3)
    SaveOffer.objects.create(reason="unused", kind="pause", pause_months=2)
    SaveOffer.objects.create(reason="switched_service", kind="pause", pause_months=1)
    SaveOffer.objects.create(
        reason="missing_features",
        kind="downgrade",
        downgrade_price_id=cheaper["id"],
        downgrade_plan_name="Starter",
        downgrade_amount=799,
    )
    # The subscribers as the CRM holds them after their sign-up (written in bulk, as the services leave them: the
    # sign-up is not what this replay is about).
    customers, states = [], []
    for n in range(count):
        world = fake.add_subscription(email=f"p{n}@example.com", product=product, price=price)
        state = subscription_state(world.subscription, product_lookup=fake.objects["products"].get)
        customers.append(
            Customer(email=f"p{n}@example.com", stripe_customer_id=world.customer["id"], lifecycle_stage=Stage.ACTIVE)
        )
        states.append(state)
    Customer.objects.bulk_create(customers)
    Subscription.objects.bulk_create(
        [Subscription(customer=c, **state.model_fields()) for c, state in zip(customers, states, strict=True)]
    )


def _assert_in_agreement(fake: FakeStripe) -> None:
    outbound = {}
    for customer_id, event_type in OutboundDelivery.objects.order_by("sequence").values_list(
        "customer_id", "event_type"
    ):
        outbound.setdefault(customer_id, []).append(event_type)
    for subscription in Subscription.objects.select_related("customer"):
        stripe_sub = fake.get(subscription.stripe_subscription_id)
        pause = stripe_sub.get("pause_collection") or {}
        crm = (subscription.status, subscription.pause_behavior, subscription.cancel_at_period_end)
        assert crm == (stripe_sub["status"], pause.get("behavior") or "", stripe_sub["cancel_at_period_end"])
        assert subscription.price_id == stripe_sub["items"]["data"][0]["price"]["id"]
        assert subscription.discount_id == (stripe_sub["discounts"] or [""])[0]
        sent = outbound.get(subscription.customer_id, [])
        pause_news = [t for t in sent if t in ("subscription.paused", "subscription.resumed")]
        assert (pause_news[-1:] == ["subscription.paused"]) == bool(pause) or stripe_sub["status"] == "canceled"
        stage = subscription.customer.lifecycle_stage
        if stripe_sub["status"] == "canceled":
            assert stage == "churned" and sent[-1] == "customer.churned"
        elif pause or stripe_sub["cancel_at_period_end"]:
            assert stage == "at_risk"
        assert sent.count("subscription.cancellation_scheduled") <= 1
        if stripe_sub["cancel_at_period_end"]:
            assert "subscription.cancellation_scheduled" in sent


def test_a_thousand_random_cancel_paths_leave_stripe_the_crm_and_the_panel_in_agreement(stripe_in_process):
    fake, rng = stripe_in_process, random.Random(SEED)
    _world(fake, CUSTOMERS)
    panel_endpoint()

    walked = 0
    for round_number in range(10):  # customers come back after Stripe's time has passed, until 1,000 paths
        now = timezone.now() + timedelta(days=40 * round_number)
        running = Subscription.objects.filter(status="active", cancel_at_period_end=False).order_by("pk")
        for subscription in running[: PATHS - walked]:
            _walk(subscription, fake, rng, now=now)
            walked += 1
        _process(fake, _take_emitted(fake), rng)
        fake.advance(int(timezone.now().timestamp()) + 400 * 86400)  # Stripe's time: pauses end, periods end
        _process(fake, _take_emitted(fake), rng)
        domain_events_drain(time_budget=300)

    sessions = CancelSession.objects.select_related("change")
    assert sessions.count() == PATHS
    assert sessions.filter(offer_eligible=False).exists()  # the second visits after an offer: none this time
    decided = [session for session in sessions if session.outcome]
    assert all(session.change.status == ChangeStatus.APPLIED for session in decided)
    updates = Counter(update["idempotency_key"] for update in fake.subscription_updates)
    assert set(updates.values()) == {1}  # one Stripe change per decided session, however often it was sent
    assert sorted(updates) == sorted(session.change.key for session in decided)
    outcomes = Counter((session.outcome, session.offer_kind if session.offer_shown else "") for session in decided)
    assert {("accepted", "pause"), ("accepted", "discount"), ("accepted", "downgrade"), ("canceled", "")} <= set(
        outcomes
    )
    _assert_in_agreement(fake)
