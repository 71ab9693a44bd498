"""A small history with known figures for the dashboard's tests (tests/backoffice/test_dashboard.py and the browser
tests).

`build_story(now=..., tag=...)` writes rows the way the services leave them (a read test: the figures are what matters).
Every call adds the same story for new customers, so two calls double every count: the query-count tests use that.
"""

from datetime import timedelta

from automations.models import QueueStatus, SendingPause
from billing.models import SubscriptionStatus
from billing.recoveries import payment_recovery_record
from customers.models import Customer, StageTransition, TimelineSource
from customers.rollups import stage_move_day_record, stage_move_day_record_created
from integrations.models import RunKind, WorkflowRun
from support.models import Ticket, TicketStatus
from tests.automations.factories import AutomationRuleFactory, AutomationStepFactory, QueuedEmailFactory
from tests.billing.factories import SubscriptionFactory
from tests.customers.factories import CustomerFactory, TimelineEventFactory


def _customer(tag: str, name: str, *, created_days_ago: float, now, stage: str = "discovery") -> Customer:
    customer = CustomerFactory(email=f"{name}-{tag}@example.com", name=f"{name.title()} {tag}")
    Customer.objects.filter(pk=customer.pk).update(created_at=now - timedelta(days=created_days_ago))
    customer.refresh_from_db()
    stage_move_day_record_created(customer=customer)  # as customer_upsert does: each arrives in Discovery
    Customer.objects.filter(pk=customer.pk).update(lifecycle_stage=stage)
    customer.refresh_from_db()
    return customer


def _move(customer, from_stage, to_stage, *, days_ago, now):
    transition = StageTransition.objects.create(
        customer=customer, from_stage=from_stage, to_stage=to_stage, cause="test", occurred_at=now - timedelta(days_ago)
    )
    stage_move_day_record(transition=transition)  # as customer_move_stage does with each move


def _failed(customer, invoice, subscription, *, days_ago, now, amount, currency, next_attempt=None):
    TimelineEventFactory(
        customer=customer,
        source=TimelineSource.STRIPE,
        kind="payment.failed",
        occurred_at=now - timedelta(days=days_ago),
        object_type="stripe.invoice",
        object_id=invoice,
        source_key=f"invoice:{invoice}:payment-failed:1",
        payload={
            "invoice_id": invoice,
            "subscription_id": subscription,
            "amount_due": amount,
            "currency": currency,
            "next_payment_attempt": next_attempt.isoformat() if next_attempt else None,
        },
    )


def _recovered(customer, invoice, *, days_ago, now):
    TimelineEventFactory(
        customer=customer,
        source=TimelineSource.STRIPE,
        kind="payment.recovered",
        occurred_at=now - timedelta(days=days_ago),
        object_type="stripe.invoice",
        object_id=invoice,
        source_key=f"invoice:{invoice}:payment-recovered",
        payload={"invoice_id": invoice},
    )
    payment_recovery_record(customer_id=customer.pk, invoice_id=invoice)  # as billing.services does with each recovery


def _sent(step, customer, *, days_ago, now, subscription="", opened=False, clicked=False):
    sent_at = now - timedelta(days=days_ago)
    item = QueuedEmailFactory(
        step=step, enrollment__rule=step.rule, enrollment__customer=customer, enrollment__subscription_id=subscription
    )
    item.status = QueueStatus.SENT
    item.sent_at = item.delivered_at = sent_at
    item.opened_at = sent_at if opened else None
    item.clicked_at = sent_at if clicked else None
    item.save()
    return item


def build_story(*, now, tag: str = "a") -> dict:
    """The figures each period should show for one story are in STORY_FIGURES."""
    # Customers created 2, 20, 60 and 200 days ago: new in 7/30/90 days = 3/5/6 (with the others below).
    ann = _customer(tag, "ann", created_days_ago=2, now=now, stage="purchase")
    ben = _customer(tag, "ben", created_days_ago=2, now=now, stage="trial")
    cat = _customer(tag, "cat", created_days_ago=2, now=now, stage="churned")
    dan = _customer(tag, "dan", created_days_ago=20, now=now, stage="churned")
    eve = _customer(tag, "eve", created_days_ago=20, now=now, stage="active")
    fay = _customer(tag, "fay", created_days_ago=60, now=now, stage="active")
    gus = _customer(tag, "gus", created_days_ago=200, now=now, stage="active")

    # The funnel: two trials in the week, one of them bought; two churned (3 and 10 days ago).
    _move(ann, "discovery", "trial", days_ago=5, now=now)
    _move(ann, "trial", "purchase", days_ago=4, now=now)
    _move(ben, "discovery", "trial", days_ago=5, now=now)
    _move(cat, "active", "churned", days_ago=3, now=now)
    _move(dan, "active", "churned", days_ago=10, now=now)

    # At risk: ann's payment failed (Stripe retries in 2 days); eve cancels at the period's end.
    retry = now + timedelta(days=2)
    SubscriptionFactory(customer=ann, stripe_subscription_id=f"sub_ann_{tag}", status=SubscriptionStatus.PAST_DUE)
    _failed(
        ann, f"in_ann_{tag}", f"sub_ann_{tag}", days_ago=1, now=now, amount=1499, currency="eur", next_attempt=retry
    )
    SubscriptionFactory(customer=eve, stripe_subscription_id=f"sub_eve_{tag}", cancel_at_period_end=True)

    # Churn reasons: one subscription ended in the week, two more in the month.
    ended = {"status": SubscriptionStatus.CANCELED, "cancellation_reason": "cancellation_requested"}
    SubscriptionFactory(
        customer=cat,
        ended_at=now - timedelta(days=3),
        cancellation_feedback="too_expensive",
        cancellation_comment=f"Too pricey for my group {tag}",
        **ended,
    )
    SubscriptionFactory(customer=dan, ended_at=now - timedelta(days=20), cancellation_feedback="too_expensive", **ended)
    SubscriptionFactory(
        customer=gus,
        ended_at=now - timedelta(days=25),
        cancellation_feedback="missing_features",
        cancellation_comment=f"Needs Forge 1.21 {tag}",
        **ended,
    )

    # Dunning: eve's invoice failed, got a dunning email, was paid (in the week); fay's failed and was paid with no
    # dunning email before (one came after the payment); gus's was recovered after dunning 35 days ago.
    dunning = AutomationStepFactory(rule=AutomationRuleFactory(trigger="payment.failed", name=f"Dunning {tag}"))
    welcome = AutomationStepFactory(rule=AutomationRuleFactory(trigger="subscription.created", name=f"Welcome {tag}"))
    _failed(eve, f"in_eve_{tag}", f"sub_eve_{tag}", days_ago=6, now=now, amount=1499, currency="eur")
    _sent(dunning, eve, days_ago=5, now=now, subscription=f"sub_eve_{tag}", opened=True, clicked=True)
    _recovered(eve, f"in_eve_{tag}", days_ago=4, now=now)
    _failed(fay, f"in_fay_{tag}", f"sub_fay_{tag}", days_ago=6, now=now, amount=2000, currency="usd")
    _recovered(fay, f"in_fay_{tag}", days_ago=4, now=now)
    _sent(dunning, fay, days_ago=3, now=now, opened=True)
    _failed(gus, f"in_gus_{tag}", f"sub_gus_{tag}", days_ago=40, now=now, amount=999, currency="usd")
    _sent(dunning, gus, days_ago=39, now=now)
    _recovered(gus, f"in_gus_{tag}", days_ago=35, now=now)
    # Engagement besides: a welcome email sent in the week, not opened.
    _sent(welcome, ann, days_ago=1, now=now)

    # The queue: one email due, one later, one failed today; sending is paused.
    QueuedEmailFactory(step=welcome, enrollment__rule=welcome.rule, enrollment__customer=ben)
    later = now + timedelta(days=1)
    QueuedEmailFactory(
        step=welcome, enrollment__rule=welcome.rule, enrollment__customer=cat, scheduled_at=later, next_attempt_at=later
    )
    failed = QueuedEmailFactory(step=welcome, enrollment__rule=welcome.rule, enrollment__customer=dan)
    failed.status = QueueStatus.FAILED
    failed.last_error = "422 invalid address"
    failed.save()
    SendingPause.objects.get_or_create(
        provider="resend",
        defaults={"cause": "Resend refused the API key (401)", "paused_at": now, "next_probe_at": now},
    )

    # Tickets: two open, one closed.
    Ticket.objects.create(
        discord_user_id=f"{ord(tag)}1", customer=ann, subject=f"Server down {tag}", status=TicketStatus.OPEN
    )
    Ticket.objects.create(discord_user_id=f"{ord(tag)}2", customer=ben, subject=f"Mods {tag}", status=TicketStatus.OPEN)
    Ticket.objects.create(
        discord_user_id=f"{ord(tag)}3", customer=cat, subject=f"Refund {tag}", status=TicketStatus.CLOSED
    )
    # Workflow runs of the integrations, with their customer (for the changelists' query counts).
    for customer in (ann, ben):
        WorkflowRun.objects.create(
            kind=RunKind.values[0], key=f"story:{tag}:{customer.pk}", subject=f"story:{tag}", customer=customer
        )
    return {"ann": ann, "eve": eve}


# Per period (days): the dashboard's figures for one story.
STORY_FIGURES = {
    7: {"new": 3, "churned": 1, "ended": 1, "recovered": 2, "after_dunning": 1, "sent": 3, "opened": 2, "clicked": 1},
    30: {"new": 5, "churned": 2, "ended": 3, "recovered": 2, "after_dunning": 1, "sent": 3, "opened": 2, "clicked": 1},
    90: {"new": 6, "churned": 2, "ended": 3, "recovered": 3, "after_dunning": 2, "sent": 4, "opened": 2, "clicked": 1},
}
