"""The demo's cancel-page customers: they press "cancel" in the panel, give a reason on our page and either accept
the offer Marketing set for it or cancel at the period's end, through the real services (billing/retention/): the
session, the reason, the decision and the Stripe change, sent to the in-process fake Stripe, whose emitted events
the player delivers like any other. Later steps play Stripe's own time for that subscription only: a pause that
reaches its end resumes, a cancellation at the period's end takes effect, and an accepted discount or plan renews.
"""

import random
from datetime import datetime, timedelta

from billing.models import Subscription
from billing.retention import changes, sessions
from billing.retention.models import SaveOffer

from .stripe_world import ts

# What Marketing has set up in the demo: an offer for five of the eight reasons (the others get none).
COMMENTS = {
    "too_expensive": "Money is tight this month.",
    "unused": "Exams, no time to play until summer.",
    "other": "Moving house.",
    "missing_features": "We need more RAM for the big modpack.",
}


def offers_install(prices: dict[str, dict]) -> None:
    """The save offers, per reason (idempotent)."""
    starter = prices["starter"]
    offers = {
        "too_expensive": {"kind": "discount", "discount_percent": 30, "discount_months": 3},
        "unused": {"kind": "pause", "pause_months": 2},
        "other": {"kind": "pause", "pause_months": 1},
        "low_quality": {"kind": "discount", "discount_percent": 20, "discount_months": 2},
        "missing_features": {
            "kind": "downgrade",
            "downgrade_price_id": starter["id"],
            "downgrade_plan_name": "Starter Server",
            "downgrade_amount": starter["unit_amount"],
        },
    }
    for reason, fields in offers.items():
        SaveOffer.objects.update_or_create(reason=reason, defaults=fields)


# The reason by the journey's number, so even a short history has a pause that resumed, a discount, a plan move
# and a cancellation. A pause visit comes early enough in the history for the pause to end before today.
REASON_TURNS = ("unused", "too_expensive", "other", "missing_features", "switched_service", "low_quality", "unused")


def plan_cancel_page(
    steps: list, *, subscribe, renew, rng: random.Random, today: datetime, start: datetime, turn: int
) -> None:
    """Subscribes, renews once, opens the cancel page during the second period; then Stripe's time."""
    reason = REASON_TURNS[turn % len(REASON_TURNS)]
    pauses = reason in ("unused", "other")
    buy = start + timedelta(days=rng.uniform(3, 15 if pauses else 40), hours=rng.uniform(0, 12))
    steps[0] = (buy - timedelta(hours=rng.uniform(1, 30)), steps[0][1])
    steps.append((buy, subscribe("pro" if rng.random() < 0.7 else "ultimate")))
    steps.append((buy + timedelta(days=30), renew))
    visit = buy + timedelta(days=30 + rng.uniform(2, 10 if pauses else 25))
    steps.append((visit, _visit(reason=reason, accepts=rng.random() < 0.75, reloads=rng.random() < 0.3)))
    for later in (60, 90, 120):  # the period ends, or a pause of 1 to 3 months ends
        if buy + timedelta(days=later) < today:
            steps.append((buy + timedelta(days=later, minutes=1), _stripe_time(renew)))
    for months in (1, 2):
        moment = changes.months_later(visit, months) + timedelta(minutes=1)
        if moment < today:
            steps.append((moment, _stripe_time(None)))


def _visit(*, reason: str, accepts: bool, reloads: bool):
    def step(play) -> list[dict]:
        fake, sub, at = play.world.stripe, play.objects["sub"], play.objects["at"]
        subscription = Subscription.objects.get(stripe_subscription_id=sub["id"])
        session = sessions.cancel_session_create(subscription=subscription, now=at)
        sessions.cancel_session_reason_give(session_id=session.pk, reason=reason, comment=COMMENTS.get(reason, ""))
        session.refresh_from_db()
        choice = "accept" if session.offer_shown and accepts else "cancel"
        for _ in range(2 if reloads else 1):  # a double click changes Stripe once
            decided = sessions.cancel_session_decide(session_id=session.pk, choice=choice)
            changes.change_send(change_id=decided.change_id)
        play.objects["sub"] = fake.get(sub["id"])  # the fake holds the changed subscription now
        return _take(fake)

    return step


def _stripe_time(renew):
    """What Stripe does by itself for this subscription by now; a running one without a pause renews (`renew`)."""

    def step(play) -> list[dict]:
        fake, at = play.world.stripe, play.objects["at"]
        sub_id = play.objects["sub"]["id"]
        fake.advance(ts(at), subscription_ids={sub_id})
        play.objects["sub"] = sub = fake.get(sub_id)
        events = _take(fake)
        if renew is not None and sub["status"] != "canceled" and not sub.get("pause_collection"):
            events += renew(play)
        return events

    return step


def _take(fake) -> list[dict]:
    with fake.lock:
        events, fake.emitted[:] = list(fake.emitted), []
    return events
