"""The cast of the demo history: who the customers are and what happens to each of them in Stripe, day by day.

Every journey is a list of moments at which the customer does something (signs up, subscribes, pays, fails to pay,
cancels). What the CRM makes of it (stages, timelines, enrollments, emails) is left to the real services, which the
player (devtools/demo/player.py) feeds in time order. Seeded randomness: the same `--customers` and the same day
give the same story.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .cancel_page import plan_cancel_page
from .stripe_world import StripeWorld

FIRST_NAMES = (
    "Mia Diego Priya Tom Lea Sam Noah Emma Liam Olivia Lucas Sofia Mateo Aisha Yuki Jonas Elif Omar Chloe Felix "
    "Hana Ivan Zoe Leon Nora Arjun Maya Hugo Ines Kofi Lina Theo Ana Raj Freya Malik Clara Emil Sara Tariq"
)
LAST_NAMES = (
    "Lindqvist Ramos Nair Becker Moreau Okafor Jensen Rossi Kowalski Tanaka Silva Novak Haddad Schmidt Dubois "
    "Andersen Costa Yilmaz Murphy Ivanova Khan Meyer Fischer Lopez Santos Berg Weber Hoffmann Laine Ortiz"
)
FIRST, LAST = FIRST_NAMES.split(" "), LAST_NAMES.split(" ")

# Stripe's cancellation_details.feedback values (https://docs.stripe.com/api/subscriptions/object) with what people
# tend to write in the portal's comment box.
FEEDBACK = [
    ("too_expensive", "Hard to justify the price while my group only plays on weekends."),
    ("unused", "We stopped playing for the summer."),
    ("missing_features", "Needed automatic backups to our own cloud storage."),
    ("switched_service", "A friend hosts our server now."),
    ("low_quality", "The server lagged during evening peaks."),
    ("too_complex", None),
    ("other", "Moving abroad, will be back."),
    ("customer_service", None),
]

# (journey, weight). Most people in a funnel have only signed up (the newsletter, the Discord server) and not tried
# a server yet: three in five here, so that the others fill every stage with a story: trials open, lapsed and
# converted; subscribers settling in; failed payments recovered, lost and open now; cancellations with feedback,
# scheduled or done; and the win-back campaign (still running for some, ended without a return for others, and
# some who came back; and customers who used our cancel page: saved by its offer, paused and resumed, or gone). The
# weights also bound the first run's time: a Stripe story costs the webhook path's full
# processing for each of its events (a dunning story about nine, with its emails), a sign-up one insert. About
# 520 Stripe events kept bin/run's first run near 40 s on this machine; the cancel-page customers (below) add about
# a hundred.
JOURNEYS = [
    ("browsing", 60),
    ("trial_open", 5),
    ("trial_lapsed", 3),
    ("trial_converts", 4),
    ("subscriber", 8),
    ("dunning_recovered", 3),
    ("dunning_lost", 2),
    ("at_risk_now", 2),
    ("cancels", 4),
    ("cancel_scheduled", 2),
    ("win_back_now", 3),
    ("comes_back", 4),
]
# One browsing customer in CANCEL_PAGE_EVERY instead uses our cancel page (devtools/demo/cancel_page.py), planned with
# its own random numbers: the others' stories stay exactly as they were without it.
CANCEL_PAGE_EVERY = 8
# Journeys whose story is the win-back campaign: they gave marketing consent, or its emails would not reach them.
CAMPAIGN_JOURNEYS = {"win_back_now", "comes_back"}

Step = Callable[["Play"], list[dict]]


@dataclass
class Journey:
    index: int
    kind: str
    email: str
    name: str
    fields: dict
    steps: list[tuple[datetime, Step]] = field(default_factory=list)


@dataclass
class Play:
    """What a step may use: the Stripe world and the journey's own Stripe objects."""

    world: StripeWorld
    prices: dict[str, dict]
    objects: dict = field(default_factory=dict)


def cast(*, count: int, today: datetime, days: int = 90, seed: int = 12) -> list[Journey]:
    rng = random.Random(seed)
    # One of each journey first, so even a small history has them all; then the weighted mix.
    weighted = [kind for kind, weight in JOURNEYS for _ in range(weight)]
    rng.shuffle(weighted)
    kinds = [kind for kind, _ in JOURNEYS] + weighted
    journeys = []
    for index in range(count):
        first, last = FIRST[index % len(FIRST)], LAST[(index * 7 + index // len(FIRST)) % len(LAST)]
        kind = kinds[index] if index < len(kinds) else rng.choice(weighted)
        vip = rng.random() < 0.06 and kind not in {"browsing", "trial_open", "trial_lapsed"}
        fields = {"opt_in_confirmed": rng.random() < 0.75 or kind in CAMPAIGN_JOURNEYS}
        if vip:
            fields.update(vip_status=True, promo_code=f"VIP-{index:04d}-{rng.randrange(36**4):04X}")
        if kind == "browsing" and index % CANCEL_PAGE_EVERY == CANCEL_PAGE_EVERY - 1:
            kind = "cancel_page"
        journey = Journey(
            index=index,
            kind=kind,
            email=f"{first}.{last}.{index}@example.com".lower(),
            name=f"{first} {last}",
            fields=fields,
        )
        _plan(journey, rng=rng, start=today - timedelta(days=days), today=today, days=days, vip=vip)
        journeys.append(journey)
    return journeys


def _at(start: datetime, day: float, rng: random.Random) -> datetime:
    """A moment on `day` during waking hours in Europe (07:00 to 22:00 UTC)."""
    return start + timedelta(days=int(day), hours=7 + rng.random() * 15)


def _plan(journey: Journey, *, rng: random.Random, start: datetime, today: datetime, days: int, vip: bool) -> None:
    kind = journey.kind
    plan = "ultimate" if vip else rng.choice(["starter", "pro", "pro", "ultimate", "pro_yearly"])
    steps = journey.steps
    signup = _at(start, _signup_day(kind, rng=rng, days=days), rng)
    steps.append((signup, _signup))
    if kind == "browsing":
        return
    if kind == "cancel_page":  # our cancel page and its offers, on its own random numbers
        own = random.Random(f"cancel-page-{journey.index}")
        plan_cancel_page(
            steps, subscribe=_subscribe, renew=_renew, rng=own, today=today, start=start, turn=journey.index
        )
        return
    buy = signup + timedelta(hours=rng.uniform(0.2, 48))
    if kind.startswith("trial"):
        _plan_trial(steps, kind, plan=plan, buy=buy, rng=rng, today=today)
        return
    if kind in {"cancels", "cancel_scheduled", "win_back_now"}:
        _plan_cancellation(steps, kind, plan=plan, rng=rng, today=today)
        return
    steps.append((buy, _subscribe(plan)))
    if kind == "subscriber":
        _renewals(steps, first=buy, plan=plan, today=today)
    elif kind in {"dunning_recovered", "dunning_lost", "at_risk_now"}:
        _plan_dunning(steps, kind, plan=plan, buy=buy, rng=rng, today=today)
    elif kind == "comes_back":
        _plan_comes_back(steps, buy=buy, rng=rng)


def _signup_day(kind: str, *, rng: random.Random, days: int) -> float:
    """The day of the history a customer of this kind signs up: late enough or early enough for their story."""
    signup_day = rng.uniform(0, days - 1)
    if kind == "trial_open":
        signup_day = rng.uniform(days - 12, days - 1)
    elif kind in {"trial_lapsed", "trial_converts"}:
        signup_day = rng.uniform(0, days - 16)
    elif kind in {"dunning_recovered", "dunning_lost", "at_risk_now"}:
        signup_day = rng.uniform(0, days - 40)
    elif kind == "subscriber":
        signup_day = rng.uniform(0, days - 2)
    elif kind == "comes_back":
        signup_day = rng.uniform(0, days - 62)
    return signup_day


def _plan_trial(steps: list, kind: str, *, plan: str, buy: datetime, rng: random.Random, today: datetime) -> None:
    steps.append((buy, _subscribe(plan, trial_days=14)))
    trial_end = buy + timedelta(days=14)
    steps.append((trial_end - timedelta(days=3), _trial_will_end))
    if kind == "trial_lapsed":
        feedback = rng.choice(FEEDBACK[:2]) if rng.random() < 0.5 else (None, None)
        steps.append((trial_end, _cancel("cancellation_requested", feedback)))
    elif kind == "trial_converts":
        steps.append((trial_end, _renew))
        _renewals(steps, first=trial_end, plan=plan, today=today)


def _plan_cancellation(steps: list, kind: str, *, plan: str, rng: random.Random, today: datetime) -> None:
    # The cancellation's moment decides the story, so the subscription is dated back from it. Cancelled five
    # weeks ago or more: the win-back campaign (three emails over 30 days) has ended. A week or three ago: it
    # is running. Scheduled: the period has not ended yet.
    ends_in_days = {
        "cancels": -rng.uniform(35, 58),
        "win_back_now": -rng.uniform(5, 26),
        "cancel_scheduled": rng.uniform(2, 20),
    }[kind]
    period_end = today + timedelta(days=ends_in_days)
    buy = period_end - timedelta(days=30)
    plan = "starter" if kind == "cancel_scheduled" else plan.removesuffix("_yearly")
    steps[0] = (buy - timedelta(hours=rng.uniform(1, 48)), _signup)
    steps.append((buy, _subscribe(plan)))
    feedback = rng.choice(FEEDBACK)
    if kind == "cancel_scheduled":
        steps.append((today - timedelta(days=rng.uniform(0.2, 1.5)), _schedule_cancel(feedback)))
        return
    steps.append((period_end - timedelta(days=rng.uniform(2, 12)), _schedule_cancel(feedback)))
    steps.append((period_end, _cancel("cancellation_requested", feedback)))


def _plan_dunning(steps: list, kind: str, *, plan: str, buy: datetime, rng: random.Random, today: datetime) -> None:
    renewal = buy + timedelta(days=30)
    if kind == "at_risk_now":
        # Their renewal failed a day or two ago; Stripe retries in a few days.
        renewal = today - timedelta(days=rng.uniform(0.5, 2.5))
        buy = renewal - timedelta(days=30)
        steps[-1] = (buy, _subscribe("pro"))
        steps[0] = (buy - timedelta(hours=2), _signup)
        steps.append((renewal, _renewal_fails(retry_in_days=3)))
        return
    steps.append((renewal, _renewal_fails(retry_in_days=3)))
    if kind == "dunning_recovered":
        # Paid after the dunning email (a new card, paid through the hosted invoice page), or on Stripe's retry.
        if rng.random() < 0.5:
            steps.append((renewal + timedelta(days=3), _retry_fails(retry_in_days=5)))
            steps.append((renewal + timedelta(days=5, hours=rng.uniform(0, 20)), _recover))
        else:
            steps.append((renewal + timedelta(hours=rng.uniform(4, 40)), _recover))
        _renewals(steps, first=renewal, plan=plan, today=today)
    else:
        steps.append((renewal + timedelta(days=3), _retry_fails(retry_in_days=5)))
        steps.append((renewal + timedelta(days=8), _retry_fails(retry_in_days=7)))
        steps.append((renewal + timedelta(days=15), _retry_fails(retry_in_days=None)))
        steps.append((renewal + timedelta(days=15, minutes=5), _cancel("payment_failed", (None, None))))


def _plan_comes_back(steps: list, *, buy: datetime, rng: random.Random) -> None:
    # Cancels after a month; the win-back campaign's first email (three days later) reaches them, and they
    # subscribe again while it runs, which ends it.
    feedback = rng.choice(FEEDBACK)
    period_end = buy + timedelta(days=30)
    steps.append((period_end - timedelta(days=rng.uniform(2, 12)), _schedule_cancel(feedback)))
    steps.append((period_end, _cancel("cancellation_requested", feedback)))
    again = period_end + timedelta(days=rng.uniform(5, 25))
    steps.append((again, _subscribe("pro", again=True)))


def _renewals(steps: list, *, first: datetime, plan: str, today: datetime) -> None:
    """The renewals after the period that began at `first`, up to today."""
    period = timedelta(days=365 if plan.endswith("yearly") else 30)
    moment = first + period
    while moment < today:
        steps.append((moment, _renew))
        moment += period


# --- steps: each changes Stripe's objects and returns the events Stripe sends --------------------------------------


def _signup(play: Play) -> list[dict]:
    return []  # the player records the signup itself (customers.services), before any Stripe event


def _subscribe(plan: str, *, trial_days: int = 0, again: bool = False) -> Step:
    def step(play: Play) -> list[dict]:
        world, at = play.world, play.objects["at"]
        if "customer" not in play.objects:
            journey = play.objects["journey"]
            play.objects["customer"] = world.customer(email=journey.email, name=journey.name, at=at)
        customer, price = play.objects["customer"], play.prices[plan]
        sub, created = world.subscribe(customer=customer, price=price, at=at, trial_days=trial_days)
        play.objects["sub"] = sub
        events = [created]
        if not trial_days:
            invoice = world.invoice(sub, at, billing_reason="subscription_create")
            events.append(world.pay(invoice, at))
        return events

    return step


def _trial_will_end(play: Play) -> list[dict]:
    sub = play.objects["sub"]
    return [play.world.event("customer.subscription.trial_will_end", sub, play.objects["at"])]


def _renew(play: Play) -> list[dict]:
    """A new period: Stripe moves the period on, invoices it (billing_reason subscription_cycle) and charges."""
    world, sub, at = play.world, play.objects["sub"], play.objects["at"]
    if sub["status"] == "canceled":
        return []
    updated = world.new_period(sub, at)
    invoice = world.invoice(sub, at, billing_reason="subscription_cycle")
    return [updated, world.pay(invoice, at)]


def _renewal_fails(*, retry_in_days: int) -> Step:
    def step(play: Play) -> list[dict]:
        world, sub, at = play.world, play.objects["sub"], play.objects["at"]
        updated = world.new_period(sub, at)
        invoice = world.invoice(sub, at, billing_reason="subscription_cycle")
        play.objects["open_invoice"] = invoice
        failed = world.fail(invoice, at, retry_in_days=retry_in_days)
        past_due = world.update(sub, at, status="past_due")
        return [updated, failed, past_due]

    return step


def _retry_fails(*, retry_in_days: int | None) -> Step:
    def step(play: Play) -> list[dict]:
        return [play.world.fail(play.objects["open_invoice"], play.objects["at"], retry_in_days=retry_in_days)]

    return step


def _recover(play: Play) -> list[dict]:
    world, sub, at = play.world, play.objects["sub"], play.objects["at"]
    paid = world.pay(play.objects.pop("open_invoice"), at)
    return [paid, world.update(sub, at, status="active")]


def _cancel(reason: str, feedback: tuple[str | None, str | None]) -> Step:
    def step(play: Play) -> list[dict]:
        sub = play.objects["sub"]
        return [play.world.cancel(sub, play.objects["at"], reason=reason, feedback=feedback[0], comment=feedback[1])]

    return step


def _schedule_cancel(feedback: tuple[str | None, str | None]) -> Step:
    def step(play: Play) -> list[dict]:
        sub = play.objects["sub"]
        return [play.world.schedule_cancel(sub, play.objects["at"], feedback=feedback[0], comment=feedback[1])]

    return step
