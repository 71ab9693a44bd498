"""Card-expiry warnings from the daily sync: a card that expires before the next renewal is warned once, with the
card-update link, and never when the subscription will not renew."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from billing.card_expiry import card_expires_at, card_expiry_due
from billing.models import CardExpiryNotice
from billing.sync import stripe_sync_run
from customers.models import DomainEvent, TimelineEvent

pytestmark = pytest.mark.django_db

DAY = 86400


def _subscription(fake_stripe, *, renews_in_days: int, card: tuple[int, int] | None, on_subscription=False, **fields):
    created = int(time.time()) - (30 - renews_in_days) * DAY
    world = fake_stripe.add_subscription(email=f"card{time.time_ns()}@example.com", created=created, **fields)
    if card is not None:
        month, year = card
        method = fake_stripe.add_card(
            customer=world.customer, exp_month=month, exp_year=year, last4="0341", default=not on_subscription
        )
        if on_subscription:
            fake_stripe.update(world.subscription["id"], default_payment_method=method["id"])
    return world


def _month_before(days: int) -> tuple[int, int]:
    """A card whose expiry month ends before `days` from now."""
    moment = datetime.now(UTC) + timedelta(days=days) - timedelta(days=31)
    return moment.month, moment.year


def _month_after(days: int) -> tuple[int, int]:
    moment = datetime.now(UTC) + timedelta(days=days + 31)
    return moment.month, moment.year


def test_a_card_expiring_before_the_renewal_is_warned_once_whatever_the_number_of_syncs(fake_stripe):
    world = _subscription(fake_stripe, renews_in_days=25, card=_month_before(25))

    first, second = stripe_sync_run(retry_delay=0), stripe_sync_run(retry_delay=0)

    assert (first.card_expiry_warnings, second.card_expiry_warnings) == (1, 0)
    notice = CardExpiryNotice.objects.get()
    assert (notice.last4, notice.subscription_id) == ("0341", world.subscription["id"])
    [event] = DomainEvent.objects.filter(name="card.expiring")
    assert event.payload["last4"] == "0341"
    renewal = datetime.fromisoformat(event.payload["renewal_at"])
    assert renewal - datetime.now(UTC) > timedelta(days=14)
    assert TimelineEvent.objects.filter(kind="card.expiring").count() == 1


def test_the_subscriptions_own_card_is_the_one_that_counts(fake_stripe):
    world = _subscription(fake_stripe, renews_in_days=20, card=_month_before(20), on_subscription=True)
    fake_stripe.add_card(customer=world.customer, exp_month=12, exp_year=2099)  # the customer's default is fine

    stripe_sync_run(retry_delay=0)

    assert CardExpiryNotice.objects.get().subscription_id == world.subscription["id"]


@pytest.mark.parametrize(
    "case",
    ["card lasts past the renewal", "cancellation scheduled", "canceled", "renewal too far away", "no card"],
)
def test_no_warning_when_the_renewal_will_not_fail_or_will_not_happen(fake_stripe, case):
    if case == "card lasts past the renewal":
        _subscription(fake_stripe, renews_in_days=20, card=_month_after(20))
    elif case == "cancellation scheduled":
        _subscription(fake_stripe, renews_in_days=20, card=_month_before(20), cancel_at_period_end=True)
    elif case == "canceled":
        _subscription(fake_stripe, renews_in_days=20, card=_month_before(20), status="canceled")
    elif case == "renewal too far away":
        _subscription(fake_stripe, renews_in_days=20, card=_month_before(20), period_days=400)
    else:
        _subscription(fake_stripe, renews_in_days=20, card=None)

    assert stripe_sync_run(retry_delay=0).errors == 0
    assert not CardExpiryNotice.objects.exists()
    assert not DomainEvent.objects.filter(name="card.expiring").exists()


def test_a_card_works_to_the_end_of_its_expiry_month():
    assert card_expires_at(exp_month=12, exp_year=2026) == datetime(2027, 1, 1, tzinfo=UTC)
    assert card_expires_at(exp_month=2, exp_year=2027) == datetime(2027, 3, 1, tzinfo=UTC)
    now = datetime(2026, 12, 10, tzinfo=UTC)
    subscription = {"status": "active", "default_payment_method": {"id": "pm_1", "type": "card", "card": {}}}
    subscription["default_payment_method"]["card"] = {"exp_month": 12, "exp_year": 2026, "last4": "1"}
    # Renewing on the last day of the expiry month works; on the first day after, it does not.
    assert (
        card_expiry_due(
            subscription=subscription, customer=None, renewal_at=datetime(2026, 12, 31, 23, tzinfo=UTC), now=now
        )
        is None
    )
    due = card_expiry_due(
        subscription=subscription, customer=None, renewal_at=datetime(2027, 1, 1, tzinfo=UTC), now=now
    )
    assert due is not None and due.payment_method_id == "pm_1"
