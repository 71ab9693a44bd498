"""The Stripe changes of the cancellation flow against the loopback fake Stripe: each sent once under our own key,
and learnt by the CRM only through Stripe's webhook (stage, timeline, outbound webhooks)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from billing.retention import changes
from billing.retention.changes import SubscriptionChangeRefused, subscription_pause
from billing.retention.models import ChangeStatus, SubscriptionChange
from billing.retention.sessions import (
    cancel_session_create,
    cancel_session_decide,
    cancel_session_reason_give,
)
from customers.models import TimelineEvent
from tests.customers.factories import StaffUserFactory
from webhooks.models import OutboundDelivery

from .cancel_world import deliver_emitted, offer, panel_endpoint, subscribed

pytestmark = pytest.mark.django_db
SUBSCRIPTION_UPDATE = r"/v1/subscriptions/[^/]+"


def _outbound(customer) -> list[str]:
    return list(
        OutboundDelivery.objects.filter(customer=customer).order_by("sequence").values_list("event_type", flat=True)
    )


def _timeline(customer) -> list[str]:
    return list(TimelineEvent.objects.filter(customer=customer).values_list("kind", flat=True))


def test_a_staff_pause_reaches_stripe_once_and_the_crm_through_the_webhook(fake_stripe, deliver):
    panel_endpoint()
    world, subscription = subscribed(fake_stripe, deliver)
    staff = StaffUserFactory()
    now = timezone.now()

    change = subscription_pause(
        subscription=subscription, months=2, idempotency_key="ticket:7:pause", actor=staff, now=now
    )
    again = subscription_pause(subscription=subscription, months=3, idempotency_key="ticket:7:pause", actor=staff)

    assert change.status == again.status == ChangeStatus.APPLIED and again.pk == change.pk
    [update] = fake_stripe.subscription_updates
    assert update["idempotency_key"] == "ticket:7:pause"
    pause = fake_stripe.get(world.subscription["id"])["pause_collection"]
    assert pause["behavior"] == "void"
    resumes_at = datetime.fromtimestamp(pause["resumes_at"], tz=UTC)
    assert resumes_at.date() == changes.months_later(now, 2).date()
    subscription.refresh_from_db()
    assert subscription.pause_behavior == ""  # the CRM waits for Stripe's word

    deliver_emitted(fake_stripe, deliver)

    subscription.refresh_from_db()
    assert (subscription.pause_behavior, subscription.pause_resumes_at) == ("void", resumes_at)
    assert subscription.customer.lifecycle_stage == "at_risk"
    assert "subscription.paused" in _timeline(subscription.customer)
    assert {"customer.at_risk", "subscription.paused"} <= set(_outbound(subscription.customer))

    # Stripe ends the pause at resumes_at by itself.
    fake_stripe.advance(pause["resumes_at"])
    deliver_emitted(fake_stripe, deliver)

    subscription.refresh_from_db()
    assert subscription.pause_behavior == "" and subscription.pause_resumes_at is None
    assert subscription.customer.lifecycle_stage == "active"
    assert _outbound(subscription.customer)[-1] == "subscription.resumed"
    assert _timeline(subscription.customer).count("subscription.resumed") == 1


def test_a_lost_answer_is_asked_again_under_the_same_key_and_pauses_once(fake_stripe, deliver):
    _world, subscription = subscribed(fake_stripe, deliver)
    fake_stripe.lose_answer_next("POST", SUBSCRIPTION_UPDATE)

    change = subscription_pause(subscription=subscription, months=1, idempotency_key="ticket:8:pause")

    assert change.status == ChangeStatus.APPLIED
    calls = fake_stripe.requests_to("POST", SUBSCRIPTION_UPDATE)
    assert len(calls) == 2 and calls[0].body == calls[1].body
    assert {call.header("idempotency-key") for call in calls} == {"ticket:8:pause"}
    assert len(fake_stripe.subscription_updates) == 1


def test_a_change_stripe_did_not_answer_is_sent_again_later_with_the_same_bytes(fake_stripe, deliver):
    _world, subscription = subscribed(fake_stripe, deliver)
    fake_stripe.fail_next(503, times=2)  # the call and stripe-python's own retry

    change = subscription_pause(subscription=subscription, months=1, idempotency_key="ticket:9:pause")

    assert change.status == ChangeStatus.APPLYING and fake_stripe.subscription_updates == []
    assert changes.changes_retry_due(now=timezone.now() + timedelta(minutes=2)) == 1
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPLIED
    bodies = {call.body for call in fake_stripe.requests_to("POST", SUBSCRIPTION_UPDATE)}
    assert len(bodies) == 1 and len(fake_stripe.subscription_updates) == 1


def test_a_second_pause_under_a_new_key_waits_while_the_first_is_unanswered(fake_stripe, deliver):
    # The first pause's answer is lost (Stripe may have paused): a reloaded ticket page has a new form token, and a
    # second pause under it would pause again with other dates. It is refused until the first one is answered.
    _world, subscription = subscribed(fake_stripe, deliver)
    fake_stripe.lose_answer_next("POST", SUBSCRIPTION_UPDATE, status=502, times=2)
    first = subscription_pause(subscription=subscription, months=1, idempotency_key="ticket:11:pause:a")
    assert first.status == ChangeStatus.APPLYING

    with pytest.raises(SubscriptionChangeRefused, match="still waiting for Stripe's answer"):
        subscription_pause(subscription=subscription, months=3, idempotency_key="ticket:11:pause:b")

    assert {call.header("idempotency-key") for call in fake_stripe.requests_to("POST", SUBSCRIPTION_UPDATE)} == {
        "ticket:11:pause:a"
    }
    assert changes.changes_retry_due(now=timezone.now() + timedelta(minutes=2)) == 1
    assert len(fake_stripe.subscription_updates) == 1  # paused once, for the first request's month


def test_a_resume_delivered_before_its_pause_leaves_the_server_running(fake_stripe, deliver):
    # Stripe sends events in no guaranteed order: the pause and an early resume arrive resumed-first. Each event is
    # applied from the subscription as Stripe holds it now (dj-stripe fetches it again), so the late pause event
    # cannot suspend the server after it was resumed.
    from billing.retention.stripe_calls import subscription_update_send

    panel_endpoint()
    world, subscription = subscribed(fake_stripe, deliver)
    subscription_pause(subscription=subscription, months=2, idempotency_key="ticket:12:pause")
    subscription_update_send(
        subscription_id=world.subscription["id"], params={"pause_collection": ""}, idempotency_key="ticket:12:resume"
    )
    with fake_stripe.lock:
        paused_event, resumed_event = list(fake_stripe.emitted)
        fake_stripe.emitted.clear()

    assert deliver(resumed_event).status_code == 200
    assert deliver(paused_event).status_code == 200

    subscription.refresh_from_db()
    assert subscription.pause_behavior == "" and subscription.pause_resumes_at is None
    assert subscription.customer.lifecycle_stage != "at_risk"
    assert "subscription.paused" not in _outbound(subscription.customer)
    assert "subscription.paused" not in _timeline(subscription.customer)


def test_a_refused_change_is_failed_and_never_sent_again(fake_stripe, deliver):
    world, subscription = subscribed(fake_stripe, deliver)
    fake_stripe.objects["subscriptions"].pop(world.subscription["id"])  # Stripe no longer knows it

    change = subscription_pause(subscription=subscription, months=1, idempotency_key="ticket:10:pause")

    assert change.status == ChangeStatus.FAILED and "did not change" in change.error
    assert changes.changes_retry_due(now=timezone.now() + timedelta(minutes=2)) == 0
    assert len(fake_stripe.requests_to("POST", SUBSCRIPTION_UPDATE)) == 1


@pytest.mark.parametrize("months", [0, 4])
def test_a_pause_outside_one_to_three_months_is_refused_and_nothing_sent(fake_stripe, deliver, months):
    _world, subscription = subscribed(fake_stripe, deliver)
    with pytest.raises(SubscriptionChangeRefused):
        subscription_pause(subscription=subscription, months=months, idempotency_key=f"t:{months}")
    assert not SubscriptionChange.objects.exists() and fake_stripe.requests_to("POST", SUBSCRIPTION_UPDATE) == []


def _decided(subscription, reason, choice, comment=""):
    session = cancel_session_create(subscription=subscription)
    cancel_session_reason_give(session_id=session.pk, reason=reason, comment=comment)
    session = cancel_session_decide(session_id=session.pk, choice=choice)
    changes.change_send(change_id=session.change_id)
    session.refresh_from_db()
    return session


def test_a_discount_offer_creates_its_coupon_and_discounts_the_subscription(fake_stripe, deliver, settings):
    settings.BILLING_CANCEL_HOLDOUT_PERCENT = 0
    offer("too_expensive", "discount", discount_percent=30, discount_months=3)
    world, subscription = subscribed(fake_stripe, deliver)

    session = _decided(subscription, "too_expensive", "accept")

    assert session.outcome == "accepted" and session.change.status == ChangeStatus.APPLIED
    coupon = fake_stripe.coupons["modready-save-30off-3m"]
    assert (coupon["percent_off"], coupon["duration"], coupon["duration_in_months"]) == (30, "repeating", 3)
    stripe_sub = fake_stripe.get(world.subscription["id"])
    [discount_id] = stripe_sub["discounts"]
    assert fake_stripe.discounts[discount_id]["source"]["coupon"] == coupon["id"]
    assert fake_stripe.subscription_updates[0]["idempotency_key"] == f"cancel-session:{session.pk}:discount"

    deliver_emitted(fake_stripe, deliver)
    subscription.refresh_from_db()
    assert subscription.discount_id == discount_id
    assert "subscription.discount_applied" in _timeline(subscription.customer)
    assert subscription.customer.lifecycle_stage != "at_risk"


def test_a_downgrade_moves_the_item_to_the_cheaper_price(fake_stripe, deliver, settings):
    settings.BILLING_CANCEL_HOLDOUT_PERCENT = 0
    panel_endpoint()
    world, subscription = subscribed(fake_stripe, deliver)
    cheaper = fake_stripe.add_price(product=world.product, unit_amount=799)
    offer("unused", "downgrade", downgrade_price_id=cheaper["id"], downgrade_plan_name="Starter", downgrade_amount=799)

    session = _decided(subscription, "unused", "accept")

    item = fake_stripe.get(world.subscription["id"])["items"]["data"][0]
    assert item["price"]["id"] == cheaper["id"]
    assert fake_stripe.subscription_updates[0]["params"]["proration_behavior"] == "none"
    deliver_emitted(fake_stripe, deliver)
    subscription.refresh_from_db()
    assert (subscription.price_id, subscription.amount) == (cheaper["id"], 799)
    assert _outbound(subscription.customer)[-1] == "subscription.plan_changed"
    assert session.outcome == "accepted"


def test_declining_cancels_at_the_period_end_with_the_reason_and_comment(fake_stripe, deliver, settings):
    settings.BILLING_CANCEL_HOLDOUT_PERCENT = 0
    panel_endpoint()
    offer("switched_service", "pause", pause_months=1)
    world, subscription = subscribed(fake_stripe, deliver)

    session = _decided(subscription, "switched_service", "cancel", comment="Moved to a friend's server")

    stripe_sub = fake_stripe.get(world.subscription["id"])
    assert stripe_sub["cancel_at_period_end"] is True and stripe_sub["pause_collection"] is None
    assert stripe_sub["cancellation_details"] == {
        "reason": "cancellation_requested",
        "feedback": "switched_service",
        "comment": "Moved to a friend's server",
    }
    deliver_emitted(fake_stripe, deliver)
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end and subscription.cancellation_feedback == "switched_service"
    assert subscription.customer.lifecycle_stage == "at_risk"
    assert "subscription.cancellation_scheduled" in _outbound(subscription.customer)
    assert session.outcome == "canceled" and session.offer_kind == "pause" and session.offer_shown

    fake_stripe.advance(stripe_sub["cancel_at"])
    deliver_emitted(fake_stripe, deliver)
    subscription.refresh_from_db()
    assert subscription.status == "canceled" and subscription.customer.lifecycle_stage == "churned"


def test_a_second_choice_in_a_decided_session_changes_nothing(fake_stripe, deliver, settings):
    settings.BILLING_CANCEL_HOLDOUT_PERCENT = 0
    offer("too_expensive", "pause", pause_months=2)
    _world, subscription = subscribed(fake_stripe, deliver)
    session = _decided(subscription, "too_expensive", "accept")

    again = cancel_session_decide(session_id=session.pk, choice="cancel")
    cancel_session_reason_give(session_id=session.pk, reason="other", comment="changed my mind")

    again.refresh_from_db()
    assert (again.outcome, again.reason, again.change_id) == ("accepted", "too_expensive", session.change_id)
    assert len(fake_stripe.subscription_updates) == 1


def test_the_holdout_gets_no_offer_but_the_withheld_offer_is_recorded(fake_stripe, deliver, settings):
    settings.BILLING_CANCEL_HOLDOUT_PERCENT = 100
    offer("too_expensive", "pause", pause_months=2)
    _world, subscription = subscribed(fake_stripe, deliver)
    session = cancel_session_create(subscription=subscription)
    session = cancel_session_reason_give(session_id=session.pk, reason="too_expensive", comment="")

    assert session.holdout and session.offer_kind == "pause" and not session.offer_shown
    with pytest.raises(Exception, match="no offer"):
        cancel_session_decide(session_id=session.pk, choice="accept")
    assert fake_stripe.subscription_updates == []


def test_one_save_offer_per_customer_per_twelve_months(fake_stripe, deliver, settings):
    settings.BILLING_CANCEL_HOLDOUT_PERCENT = 0
    offer("too_expensive", "discount", discount_percent=20, discount_months=2)
    _world, subscription = subscribed(fake_stripe, deliver)
    _decided(subscription, "too_expensive", "accept")
    deliver_emitted(fake_stripe, deliver)

    later = cancel_session_create(subscription=subscription, now=timezone.now() + timedelta(days=300))
    after_a_year = cancel_session_create(subscription=subscription, now=timezone.now() + timedelta(days=370))

    assert not later.offer_eligible and after_a_year.offer_eligible


def test_the_holdout_share_is_stable_and_near_the_setting():
    from billing.retention.sessions import in_holdout

    chosen = [in_holdout(session_id, percent=10) for session_id in range(1, 20001)]
    assert chosen == [in_holdout(session_id, percent=10) for session_id in range(1, 20001)]
    assert 0.09 < sum(chosen) / len(chosen) < 0.11
    assert not any(in_holdout(session_id, percent=0) for session_id in range(1, 1000))
