"""A replay of many failure journeys, in process: mixed decline codes, cards that expire before their renewal,
recoveries, cancellations and the dunning holdout, through billing's services (the ones the webhooks and the daily
sync call), the domain-event dispatch and the email queue with the test transport. Stripe is the loopback fake.

Checked for every journey: every dunning email carries the customer's own card-update link (and, followed, it opens
Stripe's card form for that customer at the fake); the wording follows the decline; a card expiring before its
renewal is warned at least 14 days ahead and never twice; nothing is warned after a cancellation; no dunning email
after the payment recovered or the subscription ended; an invoice in the holdout gets no dunning email.

DUNNING_REPLAY_JOURNEYS sets how many (1,000 by default).
"""

import os
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from automations.models import AutomationRule, EmailQueueItem, QueueStatus
from automations.queue_messages import message_for, subscription_contexts
from automations.render_context import links_context
from billing.card_expiry import card_expires_at, card_expiry_due, card_expiry_notice_record
from billing.card_update_links import card_update_token_read
from billing.declines import decline_from_code
from billing.models import CardExpiryNotice, PaymentFailure, Subscription
from billing.services.invoices import invoice_apply_stripe_state
from billing.services.subscriptions import subscription_apply_stripe_state
from customers.events import domain_events_drain
from customers.models import Customer
from tests.billing.conftest import fake_stripe, fake_stripe_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

JOURNEYS = int(os.environ.get("DUNNING_REPLAY_JOURNEYS", "1000"))
DUNNING = {"Dunning 1 - payment failed", "Dunning 2 - reminder", "Dunning 3 - final notice"}
DECLINES = [
    "insufficient_funds",
    "card_velocity_exceeded",
    "expired_card",
    "lost_card",
    "stolen_card",
    "incorrect_number",
    "authentication_required",
    "generic_decline",
]
LINK = re.compile(r"/billing/card-update/([A-Za-z0-9_:\-]+)")
DAY = timedelta(days=1)


@dataclass
class Journey:
    customer_id: int = 0
    stripe_customer_id: str = ""
    subscription: dict = field(default_factory=dict)
    renewal_at: datetime | None = None
    card: dict | None = None
    card_expires_before_renewal: bool = False
    cancel_day: int | None = None  # the cancellation is scheduled on this simulated day
    decline: str = ""
    attempts: int = 0
    outcome: str = ""  # recovered, canceled, open
    invoice_id: str = ""
    warned_on: datetime | None = None


SENT: list[tuple[EmailQueueItem, dict]] = []


def _drain_all():
    """Dispatch the domain events, then "send" every email that is due by now: rendered by the queue's own
    rendering (queue_messages.message_for, what the transports hand to Resend) and marked sent. The transports and
    the drain's batching are tested on their own (tests/automations/test_sending.py); at a thousand journeys they
    would make this replay take minutes."""
    domain_events_drain(time_budget=600, woken=False)
    due = list(
        EmailQueueItem.objects.filter(status=QueueStatus.PENDING).select_related(
            "customer", "enrollment", "step__template"
        )
    )
    contexts = subscription_contexts(due)
    for item in due:
        SENT.append((item, message_for(item, subscription=contexts.get(item.pk), links=links_context())))
    EmailQueueItem.objects.filter(pk__in=[item.pk for item in due]).update(status=QueueStatus.SENT)


def _build(fake, rng: random.Random, now: datetime) -> list[Journey]:
    product = fake.add_product(name="ModReady Server")
    price = fake.add_price(product=product)
    journeys = []
    for n in range(JOURNEYS):
        journey = Journey()
        renews_in = rng.randint(15, 45)
        created = int((now + timedelta(days=renews_in) - timedelta(days=30)).timestamp())
        world = fake.add_subscription(email=f"replay{n}@example.com", product=product, price=price, created=created)
        journey.subscription, journey.stripe_customer_id = world.subscription, world.customer["id"]
        journey.renewal_at = datetime.fromtimestamp(created + 30 * 86400, tz=UTC)
        if rng.random() < 0.8:
            journey.card_expires_before_renewal = rng.random() < 0.5
            expiry = journey.renewal_at - timedelta(days=35 if journey.card_expires_before_renewal else -35)
            journey.card = fake.add_card(customer=world.customer, exp_month=expiry.month, exp_year=expiry.year)
            assert (card_expires_at(exp_month=expiry.month, exp_year=expiry.year) <= journey.renewal_at) == (
                journey.card_expires_before_renewal
            )
        if rng.random() < 0.15:
            journey.cancel_day = rng.randint(0, renews_in - 1)
        if rng.random() < 0.7:
            journey.decline = rng.choice(DECLINES)
            journey.attempts = rng.randint(1, 3)
            journey.outcome = rng.choice(["recovered", "recovered", "canceled", "open"])
        journeys.append(journey)
    return journeys


def _apply_subscription(fake, journey: Journey, product: dict, **changes):
    if changes:
        fake.update(journey.subscription["id"], **changes)
    result = subscription_apply_stripe_state(
        stripe_subscription=fake.get(journey.subscription["id"]),
        product_lookup=lambda product_id: product,
        stripe_customer=fake.get(journey.stripe_customer_id),
    )
    journey.customer_id = result.subscription.customer_id
    return result.subscription


def _crm_rows(fake, journeys: list[Journey]) -> dict[str, Subscription]:
    """The CRM's customers and subscriptions as billing would have them, written in two INSERTs: subscribing is not
    what this replays, and a thousand subscription.created facts would only slow it down."""
    customers = Customer.objects.bulk_create(
        Customer(
            email=fake.get(journey.stripe_customer_id)["email"],
            name="Replay Player",
            stripe_customer_id=journey.stripe_customer_id,
            lifecycle_stage="active",
        )
        for journey in journeys
    )
    rows = Subscription.objects.bulk_create(
        Subscription(
            customer=customer,
            stripe_subscription_id=journey.subscription["id"],
            product_id=journey.subscription["items"]["data"][0]["price"]["product"],
            product_name="ModReady Server",
            status="active",
            amount=1499,
            currency="eur",
            interval="month",
            current_period_end=journey.renewal_at,
        )
        for customer, journey in zip(customers, journeys, strict=True)
    )
    for customer, journey in zip(customers, journeys, strict=True):
        journey.customer_id = customer.pk
    return {row.stripe_subscription_id: row for row in rows}


def _daily_card_checks(journeys: list[Journey], crm: dict[str, Subscription], now: datetime) -> None:
    """The daily sync's card check on each simulated day up to the renewal (billing/sync.py calls the same two)."""
    for day in range(46):
        today = now + day * DAY
        for journey in journeys:
            if journey.card is None or journey.renewal_at <= today:
                continue
            scheduled = journey.cancel_day is not None and day >= journey.cancel_day
            stripe_view = {
                **journey.subscription,
                "cancel_at_period_end": scheduled,
                "default_payment_method": journey.card,
            }
            card = card_expiry_due(subscription=stripe_view, customer=None, renewal_at=journey.renewal_at, now=today)
            if card is None or (journey.warned_on is not None and day % 7):
                continue  # asked again once a week after the warning: it must never warn twice
            if card_expiry_notice_record(subscription=crm[journey.subscription["id"]], card=card, now=today):
                assert journey.warned_on is None, "a card warned twice"
                journey.warned_on = today


def _fail_and_settle(fake, journeys: list[Journey], product: dict, now: datetime) -> dict[int, int]:
    """Each failing journey's attempts, then its outcome; returns how many emails each customer had at the outcome."""
    failing = [journey for journey in journeys if journey.decline]
    for journey in failing:
        invoice = fake.add_invoice(subscription=journey.subscription, status="open", attempt_count=0)
        journey.invoice_id = invoice["id"]
    for attempt in range(1, 4):
        for journey in failing:
            if attempt > journey.attempts:
                continue
            last = attempt == journey.attempts and journey.outcome == "canceled"
            retry = None if last else int((now + attempt * 3 * DAY).timestamp())
            fake.update(journey.invoice_id, attempt_count=attempt, attempted=True, next_payment_attempt=retry)
            invoice_apply_stripe_state(
                stripe_invoice=fake.get(journey.invoice_id), decline=decline_from_code(journey.decline)
            )
        _drain_all()
    at_outcome = _sent_counts()
    for journey in failing:
        if journey.outcome == "recovered":
            paid_at = int(timezone.now().timestamp())
            fake.update(
                journey.invoice_id,
                status="paid",
                attempt_count=journey.attempts + 1,
                status_transitions={"paid_at": paid_at},
            )
            invoice_apply_stripe_state(stripe_invoice=fake.get(journey.invoice_id))
        elif journey.outcome == "canceled":
            ended = int(timezone.now().timestamp())
            _apply_subscription(fake, journey, product, status="canceled", canceled_at=ended, ended_at=ended)
    _drain_all()
    return at_outcome


def _sent_counts() -> dict[int, int]:
    sent = EmailQueueItem.objects.filter(status=QueueStatus.SENT, step__template__name__in=DUNNING)
    return dict(sent.values_list("customer_id").annotate(n=Count("id")).order_by())


def test_a_thousand_failure_journeys(fake_stripe, client, settings, monkeypatch):  # noqa: F811
    monkeypatch.setattr("billing.card_update.PAGE_REQUESTS_PER_WINDOW", 10**6)  # one test client, many customers
    settings.DUNNING_HOLDOUT_PERCENT = 20
    settings.AUTOMATIONS_EMAIL_TRANSPORT = "django"
    # Only the rules under test: the welcome and win-back sequences would only slow the replay down.
    AutomationRule.objects.exclude(trigger__in=["payment.failed", "card.expiring"]).update(enabled=False)
    SENT.clear()
    rng, now = random.Random(21), timezone.now()
    journeys = _build(fake_stripe, rng, now)
    product = fake_stripe.get(journeys[0].subscription["items"]["data"][0]["price"]["product"])
    crm = _crm_rows(fake_stripe, journeys)

    _daily_card_checks(journeys, crm, now)
    _drain_all()
    at_outcome = _fail_and_settle(fake_stripe, journeys, product, now)

    by_customer = {journey.customer_id: journey for journey in journeys}
    _check_card_warnings(journeys, now)
    _check_dunning_emails(by_customer, at_outcome, settings)
    _follow_links(client, fake_stripe, by_customer)


def _check_card_warnings(journeys: list[Journey], now: datetime) -> None:
    for journey in journeys:
        if journey.card_expires_before_renewal and journey.warned_on is None:
            # Unwarned only because it was cancelled before a sync saw the renewal inside the warning window.
            window = max(0, (journey.renewal_at - timedelta(days=30) - now) // DAY + 1)
            assert journey.cancel_day is not None and journey.cancel_day <= window, journey
        if journey.warned_on is not None:
            assert journey.card_expires_before_renewal
            assert journey.renewal_at - journey.warned_on >= timedelta(days=14)
            assert journey.cancel_day is None or journey.warned_on < now + journey.cancel_day * DAY
    assert CardExpiryNotice.objects.count() == sum(journey.warned_on is not None for journey in journeys)
    warned_emails = EmailQueueItem.objects.filter(step__template__name="Card expiring", status="sent").count()
    assert warned_emails == CardExpiryNotice.objects.count() > 0


def _check_dunning_emails(by_customer: dict[int, Journey], at_outcome: dict[int, int], settings) -> None:
    sent: dict[int, list] = defaultdict(list)
    for item, message in SENT:
        if item.step.template.name not in DUNNING:
            continue
        journey = by_customer[item.customer_id]
        links = LINK.findall(message["text"])
        assert LINK.findall(message["html"]) == links
        assert links, f"a dunning email without the card-update link: {item.step.template.name}"
        assert {card_update_token_read(token).id for token in links} == {item.customer_id}
        kind = decline_from_code(journey.decline).kind
        if kind == "authentication_required":
            assert "confirm this payment yourself" in message["text"]
        elif kind == "hard":
            assert "cannot be charged again" in message["text"]
        sent[item.customer_id].append(message)
    groups = dict(PaymentFailure.objects.values_list("customer_id", "dunning_group"))
    final = _sent_counts()
    for customer_id, journey in by_customer.items():
        if not journey.decline:
            assert customer_id not in sent
        elif groups[customer_id] == "holdout":
            assert customer_id not in sent, "a held-out invoice got a dunning email"
        else:
            assert customer_id in sent
        if journey.outcome in ("recovered", "canceled"):
            assert final.get(customer_id, 0) == at_outcome.get(customer_id, 0), "a dunning email after the outcome"
    held = sum(group == "holdout" for group in groups.values())
    assert 0 < held < len(groups)


def _follow_links(client, fake, by_customer: dict[int, Journey]) -> None:
    """Follow one link per customer who got a dunning email: Stripe's card form opens for that customer."""
    followed = 0
    for _item, message in SENT:
        match = LINK.search(message["text"])
        if match is None:
            continue
        customer_id = card_update_token_read(match.group(1)).id
        if by_customer[customer_id].stripe_customer_id in {s["customer"] for s in fake.portal_sessions}:
            continue
        response = client.get(match.group(0))
        assert response.status_code == 303
        session = fake.portal_sessions[-1]
        assert (session["customer"], session["flow"]["type"]) == (
            by_customer[customer_id].stripe_customer_id,
            "payment_method_update",
        )
        followed += 1
    assert followed > 0
