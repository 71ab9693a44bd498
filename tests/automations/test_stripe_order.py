"""The same outcome whatever order Stripe delivers in: Stripe events, through the real webhook path, to emails.

Each journey plays out in the fake Stripe; its events (each a snapshot taken when it happened) are then delivered
shuffled and with duplicates through the signed webhook endpoint, processed by dj-stripe and billing (which re-fetch
the current state from the fake), dispatched to automations, and the email queue drained with the test transport.
The customer must end in the same place with the same emails, and the invariants hold in every order: no dunning
email after the subscription ended, no email twice, no welcome after a cancellation.
"""

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automations.models import EmailQueueItem, QueueStatus
from billing.models import Subscription
from customers.models import Customer
from devtools.fakes.stripe.objects import new_id, stripe_event
from devtools.fakes.stripe.server import FakeStripe
from tests.billing.conftest import (  # noqa: F401 (fixtures)
    _fresh_endpoint_cache,
    deliver,
    fake_stripe,
    fake_stripe_server,
    webhook_endpoint,
)

from .conftest import make_due

pytestmark = pytest.mark.django_db

DAY = 86400
DUNNING = ("Dunning 1 - payment failed", "Dunning 2 - reminder", "Dunning 3 - final notice")
WELCOME = "Welcome"

Step = Callable[[], list[dict]]  # changes the fake Stripe's state, returns the events Stripe sends for it


@dataclass
class Journey:
    customer_email: str
    steps: list[Step]
    # When the subscription ended in the journey (index of the step), None if it did not.
    ends_at_step: int | None


def _journey_new(fake: FakeStripe) -> Journey:
    world = fake.add_subscription(email=f"{new_id('new')}@example.com")
    sub_id = world.subscription["id"]

    def start():
        invoice = fake.add_invoice(subscription=world.subscription, status="paid", attempt_count=1, amount_paid=1499)
        return [stripe_event("customer.subscription.created", fake.get(sub_id)), stripe_event("invoice.paid", invoice)]

    return Journey(world.customer["email"], [start], ends_at_step=None)


def _failure(fake: FakeStripe, sub_id: str, invoice_id: str, *, attempt: int, retry_in_days: int | None) -> list[dict]:
    retry = int(time.time()) + retry_in_days * DAY if retry_in_days else None
    fake.update(invoice_id, status="open", attempt_count=attempt, attempted=True, next_payment_attempt=retry)
    events = [stripe_event("invoice.payment_failed", fake.get(invoice_id))]
    if fake.get(sub_id)["status"] != "past_due":
        fake.update(sub_id, status="past_due")
        events.append(stripe_event("customer.subscription.updated", fake.get(sub_id)))
    return events


def _journey_failed_then_recovered(fake: FakeStripe) -> Journey:
    world = fake.add_subscription(email=f"{new_id('recovered')}@example.com")
    sub_id = world.subscription["id"]
    invoice = fake.add_invoice(subscription=world.subscription, status="draft", attempt_count=0)

    def recover():
        fake.update(invoice["id"], status="paid", attempt_count=2, amount_paid=1499, next_payment_attempt=None)
        fake.update(sub_id, status="active")
        return [
            stripe_event("invoice.paid", fake.get(invoice["id"])),
            stripe_event("customer.subscription.updated", fake.get(sub_id)),
        ]

    return Journey(
        world.customer["email"],
        [
            lambda: [stripe_event("customer.subscription.created", fake.get(sub_id))],
            lambda: _failure(fake, sub_id, invoice["id"], attempt=1, retry_in_days=3),
            recover,
        ],
        ends_at_step=None,
    )


def _journey_failed_twice_then_cancelled(fake: FakeStripe) -> Journey:
    world = fake.add_subscription(email=f"{new_id('cancelled')}@example.com")
    sub_id = world.subscription["id"]
    invoice = fake.add_invoice(subscription=world.subscription, status="draft", attempt_count=0)

    def last_failure_and_cancel():
        # Stripe's last retry fails: no next attempt, the subscription is canceled, the invoice stays open.
        events = _failure(fake, sub_id, invoice["id"], attempt=3, retry_in_days=None)
        now = int(time.time())
        fake.update(sub_id, status="canceled", canceled_at=now, ended_at=now)
        return [*events, stripe_event("customer.subscription.deleted", fake.get(sub_id))]

    return Journey(
        world.customer["email"],
        [
            lambda: [stripe_event("customer.subscription.created", fake.get(sub_id))],
            lambda: _failure(fake, sub_id, invoice["id"], attempt=1, retry_in_days=3),
            lambda: _failure(fake, sub_id, invoice["id"], attempt=2, retry_in_days=5),
            last_failure_and_cancel,
        ],
        ends_at_step=3,
    )


def _journey_cancellation_withdrawn(fake: FakeStripe) -> Journey:
    world = fake.add_subscription(email=f"{new_id('stays')}@example.com")
    sub_id = world.subscription["id"]
    period_end = world.subscription["items"]["data"][0]["current_period_end"]

    def schedule():
        fake.update(sub_id, cancel_at_period_end=True, cancel_at=period_end)
        return [stripe_event("customer.subscription.updated", fake.get(sub_id))]

    def withdraw():
        fake.update(sub_id, cancel_at_period_end=False, cancel_at=None)
        return [stripe_event("customer.subscription.updated", fake.get(sub_id))]

    return Journey(
        world.customer["email"],
        [lambda: [stripe_event("customer.subscription.created", fake.get(sub_id))], schedule, withdraw],
        ends_at_step=None,
    )


# What the customer ends with when every event is processed after the journey (Stripe answering its final state):
# (subscription status, lifecycle stage, {template: queue status}).
JOURNEYS = {
    "new": (
        _journey_new,
        ("active", "onboarding", {"Welcome": "sent", "Setup tips": "pending"}),
    ),
    "failed then recovered": (
        _journey_failed_then_recovered,
        ("active", "active", {"Welcome": "sent", "Setup tips": "pending"}),
    ),
    "failed twice then cancelled": (
        _journey_failed_twice_then_cancelled,
        (
            "canceled",
            "churned",
            {
                "Win-back 1 - we saved your world": "pending",
                "Win-back 2 - what's new": "pending",
                "Win-back 3 - come back offer": "pending",
            },
        ),
    ),
    "cancellation scheduled then withdrawn": (
        _journey_cancellation_withdrawn,
        ("active", "onboarding", {"Welcome": "sent", "Setup tips": "pending"}),
    ),
}


def _emails(customer: Customer) -> dict[str, str]:
    """The customer's emails as the queue shows them: template -> status."""
    items = EmailQueueItem.objects.filter(customer=customer).select_related("step__template")
    counts = Counter(item.step.template.name for item in items)
    assert all(count == 1 for count in counts.values()), f"an email queued twice: {counts}"
    return {item.step.template.name: item.status for item in items}


def _delivery_order(data, count: int) -> list[int]:
    """Every event at least once, some twice, in any order."""
    duplicates = data.draw(st.lists(st.integers(0, count - 1), max_size=3), label="duplicates")
    return data.draw(st.permutations([*range(count), *duplicates]), label="order")


def _in_savepoint(run: Callable[[], None]) -> None:
    """One example: its rows are rolled back afterwards so the next example starts from the same database."""
    with transaction.atomic():
        run()
        transaction.set_rollback(True)


# Each example is a whole journey through the webhook endpoint, dj-stripe and the fake Stripe (about a second):
# 12 orders per journey and test (24 per journey) keeps CI in minutes. ORDER_PROPERTY_EXAMPLES=200 searches deeper.
ORDER_SETTINGS = settings(
    max_examples=int(os.environ.get("ORDER_PROPERTY_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)


@pytest.mark.parametrize("journey_name", list(JOURNEYS))
@ORDER_SETTINGS
@given(data=st.data())
def test_the_same_outcome_in_any_order(journey_name, data, fake_stripe, deliver):  # noqa: F811
    build, (status, stage, emails) = JOURNEYS[journey_name]

    def example():
        journey = build(fake_stripe)
        events = [event for step in journey.steps for event in step()]
        for index in _delivery_order(data, len(events)):
            assert deliver(events[index]).status_code == 200

        customer = Customer.objects.get(email=journey.customer_email)
        subscription = Subscription.objects.get(customer=customer)
        assert (subscription.status, customer.lifecycle_stage) == (status, stage)
        assert _emails(customer) == emails

    _in_savepoint(example)


# While the journey runs: each delivery may come late (any time after its event happened), so the fake answers
# whatever state Stripe is in at that moment. The emails may differ with the timing (a failure processed before the
# recovery sends the first dunning email, one processed after it does not), but the invariants may not.
STAGES_WHILE_RUNNING = {
    "new": {"onboarding"},
    "failed then recovered": {"active"},
    "failed twice then cancelled": {"churned"},
    # at_risk then active when the scheduled cancellation was seen in time, onboarding when it never was
    "cancellation scheduled then withdrawn": {"onboarding", "active"},
}


@pytest.mark.parametrize("journey_name", list(JOURNEYS))
@ORDER_SETTINGS
@given(data=st.data())
def test_invariants_while_the_journey_runs(journey_name, data, fake_stripe, deliver):  # noqa: F811
    build, (status, _, _) = JOURNEYS[journey_name]

    def example():
        journey = build(fake_stripe)
        last = len(journey.steps)  # the slot "after the journey"
        pending: list[tuple[int, dict]] = []  # (slot, event)
        sent_in_step: dict[int, int] = {}  # queue item id -> the journey step during which it was sent

        def note_sent(step_index: int) -> None:
            for pk in EmailQueueItem.objects.filter(status=QueueStatus.SENT).values_list("pk", flat=True):
                sent_in_step.setdefault(pk, step_index)

        for step_index, step in enumerate(journey.steps):
            for event in step():
                for _ in range(data.draw(st.integers(1, 2), label="deliveries")):
                    pending.append((data.draw(st.integers(step_index, last), label="slot"), event))
            due = [event for slot, event in pending if slot == step_index]
            for event in data.draw(st.permutations(due), label="order") if due else []:
                assert deliver(event).status_code == 200
                note_sent(step_index)
        late = [event for slot, event in pending if slot == last]
        for event in data.draw(st.permutations(late), label="late order") if late else []:
            assert deliver(event).status_code == 200
            note_sent(last)
        make_due()  # time passes: everything still queued goes out now, if it still may
        from automations.drain import email_queue_process

        email_queue_process(sleep=lambda seconds: None, time_budget=30)
        note_sent(last)

        customer = Customer.objects.get(email=journey.customer_email)
        subscription = Subscription.objects.get(customer=customer)
        assert subscription.status == status
        assert customer.lifecycle_stage in STAGES_WHILE_RUNNING[journey_name]
        sent = EmailQueueItem.objects.filter(customer=customer, status=QueueStatus.SENT).select_related(
            "step__template"
        )
        names = Counter(item.step.template.name for item in sent)
        assert all(count == 1 for count in names.values()), f"an email sent twice: {names}"
        if journey.ends_at_step is not None:
            after_end = {item.step.template.name for item in sent if sent_in_step[item.pk] >= journey.ends_at_step}
            assert not after_end & {*DUNNING, WELCOME}, f"sent after the subscription ended: {after_end}"

    _in_savepoint(example)


# --- the reported cases, step by step --------------------------------------------------------------------------------


def _dunning(customer: Customer) -> list[str]:
    items = EmailQueueItem.objects.filter(customer=customer, step__template__name__in=DUNNING)
    return list(items.order_by("step__order").values_list("status", flat=True))


def _play(journey: Journey, deliver, *, steps: range) -> list[dict]:  # noqa: F811
    """Play journey steps in order, delivering each step's events as they happen."""
    events = []
    for index in steps:
        for event in journey.steps[index]():
            events.append(event)
            assert deliver(event).status_code == 200
    return events


def test_the_last_failure_processed_after_the_cancellation_sends_no_dunning(fake_stripe, deliver):  # noqa: F811
    journey = _journey_failed_twice_then_cancelled(fake_stripe)
    _play(journey, deliver, steps=range(3))
    customer = Customer.objects.get(email=journey.customer_email)
    assert _dunning(customer) == ["sent", "pending", "pending"]  # the first failure's email; a retry is announced

    last_failure, deleted = journey.steps[3]()
    for event in (deleted, last_failure, last_failure):  # the cancellation first, then the failure (twice)
        assert deliver(event).status_code == 200
    make_due()
    from automations.drain import email_queue_process

    email_queue_process(sleep=lambda seconds: None, time_budget=30)

    customer.refresh_from_db()
    assert customer.lifecycle_stage == "churned"
    assert _dunning(customer) == ["sent", "cancelled", "cancelled"]  # nothing after the end, nothing twice
    assert not customer.timeline_events.filter(kind="payment.failed", summary__contains="attempt 3").exists()


def test_the_daily_sync_finding_the_open_invoice_of_a_cancelled_subscription_sends_no_dunning(
    fake_stripe,  # noqa: F811
    deliver,  # noqa: F811
    run_on_commit,
):
    from billing.sync import stripe_sync_run

    journey = _journey_failed_twice_then_cancelled(fake_stripe)
    _play(journey, deliver, steps=range(3))
    customer = Customer.objects.get(email=journey.customer_email)
    # The last retry and the cancellation happen while our endpoint is down: only the sync hears of them.
    journey.steps[3]()
    sub_id = Subscription.objects.get(customer=customer).stripe_subscription_id
    open_invoice = next(iter(fake_stripe.objects["invoices"].values()))
    fake_stripe.update(sub_id, latest_invoice=open_invoice["id"])
    assert (fake_stripe.get(open_invoice["id"])["status"], fake_stripe.get(sub_id)["status"]) == ("open", "canceled")

    for _ in range(2):  # and again the next day: still nothing
        with run_on_commit():  # the sync's commits dispatch its domain events, as in production
            assert stripe_sync_run(retry_delay=0).errors == 0
    make_due()
    from automations.drain import email_queue_process

    email_queue_process(sleep=lambda seconds: None, time_budget=30)

    customer.refresh_from_db()
    assert Subscription.objects.get(customer=customer).status == "canceled"
    assert customer.lifecycle_stage == "churned"
    assert _dunning(customer) == ["sent", "cancelled", "cancelled"]


def test_a_payment_failure_dispatched_after_the_cancellation_starts_no_dunning(fake_stripe, deliver):  # noqa: F811
    """The failure was recorded while the subscription could be saved, but automations hears of it only after the
    cancellation (dispatch is after commit, in any order): by then the trigger no longer holds."""
    from unittest import mock

    from customers.events import domain_event_dispatch
    from customers.models import DomainEvent

    journey = _journey_failed_twice_then_cancelled(fake_stripe)
    with mock.patch("customers.events._enqueue_dispatch"):  # nothing dispatched yet
        _play(journey, deliver, steps=range(2))
        _last_failure, deleted = journey.steps[3]()
        assert deliver(deleted).status_code == 200
    customer = Customer.objects.get(email=journey.customer_email)
    events = DomainEvent.objects.filter(customer=customer)
    # Dispatched newest first: the cancellation, then the failure, then the subscription's start.
    for name in ("subscription.canceled", "payment.failed", "subscription.created"):
        assert domain_event_dispatch(event_id=events.get(name=name).pk)

    assert _dunning(customer) == []
    assert not EmailQueueItem.objects.filter(customer=customer, step__template__name=WELCOME).exists()
    assert EmailQueueItem.objects.filter(customer=customer, step__template__name__startswith="Win-back").count() == 3
