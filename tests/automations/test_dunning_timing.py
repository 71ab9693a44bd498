"""Dunning timed to Stripe's retries: a reminder shortly before each announced retry, the last notice when Stripe
stops retrying, and every later failure re-times what has not gone out."""

from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps
from django.core import mail
from django.utils import timezone

from automations.models import AutomationRule, AutomationStep, EmailQueueItem, EmailTemplate, QueueStatus, StepAnchor
from tests.customers.factories import CustomerFactory

from .conftest import make_due, payment_failed_payload

pytestmark = pytest.mark.django_db

MIGRATION = import_module("automations.migrations.0007_dunning_timed_to_stripe")


def dunning(customer) -> dict[str, EmailQueueItem]:
    items = EmailQueueItem.objects.filter(customer=customer, enrollment__rule__name="Dunning").select_related("step")
    return {item.step.template.name: item for item in items}


def at(moment) -> str:
    return moment.replace(microsecond=0).isoformat()


def test_the_shipped_dunning_steps_follow_stripes_retries():
    steps = AutomationStep.objects.filter(rule__name="Dunning").order_by("order")
    assert [(s.template.name, s.anchor, s.delay) for s in steps] == [
        ("Dunning 1 - payment failed", StepAnchor.ENROLLMENT, timedelta(0)),
        ("Dunning 2 - reminder", StepAnchor.BEFORE_NEXT_PAYMENT_ATTEMPT, timedelta(days=1)),
        ("Dunning 3 - final notice", StepAnchor.RETRIES_EXHAUSTED, timedelta(0)),
    ]


def test_dunning_follows_next_payment_attempt_and_re_times_on_each_failure(publish, drain):
    customer = CustomerFactory()
    now = timezone.now().replace(microsecond=0)
    first_retry = now + timedelta(days=3)
    publish("payment.failed", customer, payment_failed_payload(next_payment_attempt=at(first_retry)))

    items = dunning(customer)
    assert items["Dunning 1 - payment failed"].status == QueueStatus.SENT  # at once
    assert items["Dunning 2 - reminder"].scheduled_at == first_retry - timedelta(days=1)
    # The last notice waits for Stripe to stop retrying (with a fallback after the last announced retry).
    assert items["Dunning 3 - final notice"].scheduled_at == first_retry + timedelta(days=3)

    # Stripe's retry fails too and announces the next one: the pending emails move with it.
    second_retry = now + timedelta(days=8)
    publish("payment.failed", customer, payment_failed_payload(attempt_count=2, next_payment_attempt=at(second_retry)))
    items = dunning(customer)
    assert items["Dunning 2 - reminder"].scheduled_at == second_retry - timedelta(days=1)
    assert items["Dunning 2 - reminder"].next_attempt_at == second_retry - timedelta(days=1)
    assert items["Dunning 3 - final notice"].scheduled_at == second_retry + timedelta(days=3)
    assert len(mail.outbox) == 1  # a retry failing is not a new dunning sequence

    # The reminder goes out the day before the retry...
    make_due(EmailQueueItem.objects.filter(pk=items["Dunning 2 - reminder"].pk))
    drain()
    assert [m.subject for m in mail.outbox][1:] == ["Reminder: your server needs a new payment method"]

    # ...and the retry fails for the last time: Stripe stops retrying, the last notice goes out now.
    publish("payment.failed", customer, payment_failed_payload(attempt_count=3, next_payment_attempt=None))
    items = dunning(customer)
    assert items["Dunning 3 - final notice"].status == QueueStatus.SENT
    assert [m.subject for m in mail.outbox][2:] == ["Final notice: your ModReady server will be suspended"]
    assert "Our last automatic retry failed too" in mail.outbox[2].body
    assert {item.status for item in items.values()} == {QueueStatus.SENT}


def test_a_pending_reminder_is_dropped_when_stripe_stops_retrying_before_it(publish):
    customer = CustomerFactory()
    publish(
        "payment.failed", customer, payment_failed_payload(next_payment_attempt=at(timezone.now() + timedelta(days=3)))
    )
    publish("payment.failed", customer, payment_failed_payload(attempt_count=2, next_payment_attempt=None))

    items = dunning(customer)
    assert items["Dunning 2 - reminder"].status == QueueStatus.CANCELLED  # no retry left to remind of
    assert items["Dunning 3 - final notice"].status == QueueStatus.SENT
    assert len(mail.outbox) == 2


def test_without_any_retry_announced_only_the_first_email_goes_out(publish):
    customer = CustomerFactory()
    publish("payment.failed", customer, payment_failed_payload(next_payment_attempt=None))
    assert list(dunning(customer)) == ["Dunning 1 - payment failed"]
    assert len(mail.outbox) == 1


def _reset_to_the_0002_steps():
    rule = AutomationRule.objects.get(name="Dunning")
    for order, delay, anchor, _ in MIGRATION.SHIPPED_STEPS:
        AutomationStep.objects.filter(rule=rule, order=order).update(delay=delay, anchor=anchor)
    shipped = MIGRATION._shipped_template("Dunning 3 - final notice")
    EmailTemplate.objects.filter(name="Dunning 3 - final notice").update(**shipped)
    return rule


def test_the_migration_times_an_unedited_default_rule_to_stripe():
    rule = _reset_to_the_0002_steps()
    MIGRATION.time_dunning_to_stripe(apps, None)

    anchors = list(rule.steps.order_by("order").values_list("anchor", "delay"))
    assert anchors == [
        (StepAnchor.ENROLLMENT, timedelta(0)),
        (StepAnchor.BEFORE_NEXT_PAYMENT_ATTEMPT, timedelta(days=1)),
        (StepAnchor.RETRIES_EXHAUSTED, timedelta(0)),
    ]
    final = EmailTemplate.objects.get(name="Dunning 3 - final notice")
    assert MIGRATION.NEW_FINAL in final.html_body and MIGRATION.NEW_FINAL in final.text_body
    assert final.description.startswith("When Stripe has stopped retrying")


def test_the_migration_leaves_a_rule_and_templates_staff_edited_alone():
    rule = _reset_to_the_0002_steps()
    AutomationStep.objects.filter(rule=rule, order=2).update(delay=timedelta(days=2))  # marketing's choice
    MIGRATION.time_dunning_to_stripe(apps, None)
    assert list(rule.steps.order_by("order").values_list("anchor", flat=True)) == [StepAnchor.ENROLLMENT] * 3

    rule = _reset_to_the_0002_steps()
    EmailTemplate.objects.filter(name="Dunning 3 - final notice").update(subject="Our own words")
    MIGRATION.time_dunning_to_stripe(apps, None)
    final = EmailTemplate.objects.get(name="Dunning 3 - final notice")
    assert MIGRATION.OLD_FINAL in final.html_body and final.subject == "Our own words"
    # The steps were as shipped, so they are timed to Stripe all the same.
    assert rule.steps.get(order=3).anchor == StepAnchor.RETRIES_EXHAUSTED
