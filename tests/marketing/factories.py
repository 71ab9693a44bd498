"""Factories for marketing, and a small cast of customers whose every condition is known (`cast`)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import factory
from djstripe.models import Customer as StripeCustomer

from automations.models import EmailEvent, QueueStatus, Suppression
from customers.models import Customer, StageTransition
from marketing.models import Segment, SegmentCondition
from tests.automations.factories import AutomationRuleFactory, AutomationStepFactory, QueuedEmailFactory
from tests.billing.factories import SubscriptionFactory
from tests.customers.factories import CustomerFactory, TimelineEventFactory
from tests.support.factories import TicketFactory


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    name = factory.Sequence(lambda n: f"Segment {n}")


def segment_with(*conditions: tuple, match: str = "all", name: str = "") -> Segment:
    """A segment of (field, operator, value) conditions, written as the forms would store them."""
    segment = SegmentFactory(match=match, **({"name": name} if name else {}))
    for field, operator, value in conditions:
        SegmentCondition.objects.create(segment=segment, field=field, operator=operator, value=value)
    return segment


def created_days_ago(customer: Customer, days: int, *, now: datetime) -> Customer:
    Customer.objects.filter(pk=customer.pk).update(created_at=now - timedelta(days=days))
    customer.refresh_from_db()
    return customer


def stripe_customer(customer: Customer, country: str | None) -> None:
    """dj-stripe's mirror of the customer's Stripe customer, with the billing address's country Stripe holds."""
    stripe_id = f"cus_{customer.pk:08d}"
    Customer.objects.filter(pk=customer.pk).update(stripe_customer_id=stripe_id)
    address = {"country": country, "city": "X", "line1": "1 Way"} if country else None
    StripeCustomer.objects.create(id=stripe_id, livemode=False, stripe_data={"id": stripe_id, "address": address})


def sent_email(customer: Customer, *, template=None, rule=None, sent_at: datetime):
    step_kwargs = {"rule": rule} if rule else {}
    if template:
        step_kwargs["template"] = template
    step = AutomationStepFactory(**step_kwargs)
    return QueuedEmailFactory(
        enrollment__customer=customer, enrollment__rule=step.rule, step=step, status=QueueStatus.SENT, sent_at=sent_at
    )


def tracking_event(item, event_type: str, *, at: datetime, machine_open: bool = False) -> EmailEvent:
    return EmailEvent.objects.create(
        queue_item=item,
        type=event_type,
        occurred_at=at,
        provider_event_id=f"evt_{item.pk}_{event_type}_{at.timestamp()}",
        recipient=item.recipient,
        machine_open=machine_open,
    )


@dataclass
class Cast:
    now: datetime
    ada: Customer  # active, VIP, consent, 100 days, server monthly (DE), opened and clicked 5 days ago, got welcome
    ben: Customer  # churned 10 days ago, consent, 10 days, canceled sub (FR), open ticket, failed payment 3 days ago
    cleo: Customer  # trial, no consent, 400 days, no Stripe customer, only a machine open, got welcome 60 days ago
    dan: Customer  # at risk, consent but unsubscribed, 30 days, past-due yearly (DE), clicked 40 days ago
    welcome_template: object
    welcome_rule: object


def cast(now: datetime) -> Cast:
    ada = created_days_ago(
        CustomerFactory(name="Ada", lifecycle_stage="active", vip_status=True, opt_in_confirmed=True), 100, now=now
    )
    ben = created_days_ago(CustomerFactory(name="Ben", lifecycle_stage="churned", opt_in_confirmed=True), 10, now=now)
    cleo = created_days_ago(CustomerFactory(name="Cleo", lifecycle_stage="trial"), 400, now=now)
    dan = created_days_ago(CustomerFactory(name="Dan", lifecycle_stage="at_risk", opt_in_confirmed=True), 30, now=now)
    Suppression.objects.create(email=dan.email, reason="unsubscribe")

    SubscriptionFactory(customer=ada, product_id="prod_server", price_id="price_server_monthly", status="active")
    SubscriptionFactory(customer=ben, product_id="prod_server", price_id="price_server_monthly", status="canceled")
    SubscriptionFactory(customer=dan, product_id="prod_server", price_id="price_server_yearly", status="past_due")
    stripe_customer(ada, "DE")
    stripe_customer(ben, "FR")
    stripe_customer(dan, "DE")

    welcome_rule = AutomationRuleFactory(name="Segment test welcome")
    welcome = sent_email(ada, rule=welcome_rule, sent_at=now - timedelta(days=6))
    welcome_template = welcome.step.template
    sent_email(cleo, template=welcome_template, rule=welcome_rule, sent_at=now - timedelta(days=60))
    tracking_event(welcome, "opened", at=now - timedelta(days=5))
    tracking_event(welcome, "clicked", at=now - timedelta(days=5))
    cleo_item = cleo.email_queue_items.get()
    tracking_event(cleo_item, "opened", at=now - timedelta(days=1), machine_open=True)
    dan_item = sent_email(dan, sent_at=now - timedelta(days=41))
    tracking_event(dan_item, "clicked", at=now - timedelta(days=40))

    StageTransition.objects.create(
        customer=ben, from_stage="active", to_stage="churned", cause="test", occurred_at=now - timedelta(days=10)
    )
    TicketFactory(customer=ben, status="open")
    TicketFactory(customer=ada, status="closed")
    TimelineEventFactory(customer=ben, source="stripe", kind="payment.failed", occurred_at=now - timedelta(days=3))
    TimelineEventFactory(customer=dan, source="stripe", kind="payment.failed", occurred_at=now - timedelta(days=20))
    return Cast(now, ada, ben, cleo, dan, welcome_template, welcome_rule)
