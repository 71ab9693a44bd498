"""Dunning timed to Stripe's retries: a reminder shortly before each announced retry, the last notice when Stripe
stops retrying, and every later failure re-times what has not gone out."""

from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps
from django.core import mail
from django.db import IntegrityError
from django.utils import timezone

from automations.models import (
    AutomationRule,
    AutomationStep,
    EmailQueueItem,
    EmailTemplate,
    Enrollment,
    EnrollmentStatus,
    QueueStatus,
    StepAnchor,
)
from automations.selectors import email_analytics
from automations.subscribers import on_domain_events
from tests.customers.factories import CustomerFactory

from .conftest import make_due, payment_failed_payload

pytestmark = pytest.mark.django_db

MIGRATION = import_module("automations.migrations.0007_dunning_timed_to_stripe")


def dunning(customer) -> dict[str, EmailQueueItem]:
    items = EmailQueueItem.objects.filter(customer=customer, enrollment__rule__name="Dunning").select_related("step")
    return {item.step.template.name: item for item in items}


def at(moment) -> str:
    return moment.replace(microsecond=0).isoformat()


REMINDER = "Dunning 2 - reminder"
FINAL = "Dunning 3 - final notice"
SUBJECTS = {
    "failed": "Your ModReady payment didn't go through",
    "reminder": "Reminder: your server needs a new payment method",
    "final": "Final notice: your ModReady server will be suspended",
}


def reminders(customer) -> list[EmailQueueItem]:
    return list(EmailQueueItem.objects.filter(customer=customer, step__template__name=REMINDER).order_by("id"))


def fail(publish, customer, attempt: int, retry_at):
    """Stripe's attempt number `attempt` failed; it announces the next one at `retry_at` (None: no more retries)."""
    retry = at(retry_at) if retry_at else None
    return publish(
        "payment.failed", customer, payment_failed_payload(attempt_count=attempt, next_payment_attempt=retry)
    )


def time_passes_until_the_reminder(customer, drain):
    make_due(EmailQueueItem.objects.filter(customer=customer, step__template__name=REMINDER))
    drain()


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


def test_a_reminder_goes_out_before_each_retry_stripe_announces(publish, drain):
    customer = CustomerFactory()
    now = timezone.now().replace(microsecond=0)
    retries = [now + timedelta(days=3), now + timedelta(days=8), now + timedelta(days=13)]
    for attempt, retry in enumerate(retries, start=1):
        fail(publish, customer, attempt, retry)
        [waiting] = [item for item in reminders(customer) if item.status == QueueStatus.PENDING]
        assert waiting.scheduled_at == retry - timedelta(days=1)  # the day before this retry
        assert (
            waiting.idempotency_key
            == f"email:enrollment-{waiting.enrollment_id}:step-{waiting.step_id}:in_1:attempt-{attempt + 1}"
        )
        time_passes_until_the_reminder(customer, drain)

    # The third retry fails and Stripe announces none: the last notice goes out, and no reminder.
    fail(publish, customer, 4, None)
    assert [m.subject for m in mail.outbox] == [
        SUBJECTS["failed"],
        SUBJECTS["reminder"],
        SUBJECTS["reminder"],
        SUBJECTS["reminder"],
        SUBJECTS["final"],
    ]
    assert {m.to[0] for m in mail.outbox} == {customer.email}
    assert [(r.occurrence, r.status) for r in reminders(customer)] == [
        ("in_1:attempt-2", QueueStatus.SENT),
        ("in_1:attempt-3", QueueStatus.SENT),
        ("in_1:attempt-4", QueueStatus.SENT),
    ]
    enrollment = Enrollment.objects.get(customer=customer, rule__name="Dunning")
    assert enrollment.status == EnrollmentStatus.COMPLETED  # one sequence throughout

    # The analytics count emails, not enrollments: three reminders sent.
    report = email_analytics(since=now - timedelta(days=1), until=now + timedelta(days=1))
    [dunning_row] = [row for row in report.rules if row.rule_name == "Dunning"]
    assert {row.step.template.name: row.stats.sent for row in dunning_row.steps} == {
        "Dunning 1 - payment failed": 1,
        REMINDER: 3,
        FINAL: 1,
    }
    assert dunning_row.stats.sent == 5


def test_repeated_and_late_failures_add_no_reminder(publish, drain):
    customer = CustomerFactory()
    now = timezone.now().replace(microsecond=0)
    second_attempt, third_attempt = now + timedelta(days=3), now + timedelta(days=8)
    fail(publish, customer, 1, second_attempt)
    fail(publish, customer, 1, second_attempt)  # the same failure again, under another event key
    assert len(reminders(customer)) == 1
    time_passes_until_the_reminder(customer, drain)
    fail(publish, customer, 1, second_attempt)  # ...and again once its reminder went out
    assert [r.status for r in reminders(customer)] == [QueueStatus.SENT]

    second_failure = fail(publish, customer, 2, third_attempt)
    on_domain_events([second_failure])  # dispatch is at least once: the handler runs again
    fail(publish, customer, 2, third_attempt)
    # The first failure dispatched late, after the second: it announced an attempt that has been made since.
    fail(publish, customer, 1, second_attempt)
    assert [(r.occurrence, r.status) for r in reminders(customer)] == [
        ("in_1:attempt-2", QueueStatus.SENT),
        ("in_1:attempt-3", QueueStatus.PENDING),
    ]
    items = dunning(customer)
    assert reminders(customer)[1].scheduled_at == third_attempt - timedelta(days=1)
    assert items[FINAL].scheduled_at == third_attempt + timedelta(days=3)  # not moved back either

    time_passes_until_the_reminder(customer, drain)
    fail(publish, customer, 2, third_attempt)
    assert [m.subject for m in mail.outbox] == [SUBJECTS["failed"], SUBJECTS["reminder"], SUBJECTS["reminder"]]
    assert Enrollment.objects.filter(customer=customer, rule__name="Dunning").count() == 1


def test_a_reminder_that_has_not_gone_out_moves_to_the_next_retry(publish, drain):
    customer = CustomerFactory()
    now = timezone.now().replace(microsecond=0)
    fail(publish, customer, 1, now + timedelta(days=3))
    fail(publish, customer, 2, now + timedelta(days=8))  # the drain never got to the first reminder
    [reminder] = reminders(customer)
    assert reminder.status == QueueStatus.PENDING
    assert reminder.scheduled_at == now + timedelta(days=7)
    assert reminder.idempotency_key.endswith(":in_1:attempt-3")
    time_passes_until_the_reminder(customer, drain)
    assert [m.subject for m in mail.outbox] == [SUBJECTS["failed"], SUBJECTS["reminder"]]


def test_recovery_cancels_the_reminder_of_the_next_retry(publish, drain):
    customer = CustomerFactory()
    now = timezone.now().replace(microsecond=0)
    fail(publish, customer, 1, now + timedelta(days=3))
    time_passes_until_the_reminder(customer, drain)
    fail(publish, customer, 2, now + timedelta(days=8))
    publish(
        "payment.recovered", customer, {"invoice_id": "in_1", "subscription_id": "sub_1", "product_id": "prod_modded"}
    )

    assert [r.status for r in reminders(customer)] == [QueueStatus.SENT, QueueStatus.CANCELLED]
    assert dunning(customer)[FINAL].status == QueueStatus.CANCELLED
    make_due()
    drain()
    assert [m.subject for m in mail.outbox] == [SUBJECTS["failed"], SUBJECTS["reminder"]]


def test_a_failure_dispatched_after_its_dunning_ended_starts_nothing(publish, drain):
    customer = CustomerFactory()
    now = timezone.now().replace(microsecond=0)
    fail(publish, customer, 1, now + timedelta(days=3))
    fail(publish, customer, 2, None)  # Stripe gave up: the last notice goes out and dunning is over
    assert Enrollment.objects.get(customer=customer).status == EnrollmentStatus.COMPLETED
    fail(publish, customer, 1, now + timedelta(days=3))  # the first failure again, very late
    assert Enrollment.objects.filter(customer=customer).count() == 1
    assert [m.subject for m in mail.outbox] == [SUBJECTS["failed"], SUBJECTS["final"]]


def test_no_reminder_of_a_retry_that_has_already_happened(publish):
    customer = CustomerFactory()
    fail(publish, customer, 1, timezone.now() - timedelta(hours=1))  # processed after the retry it announced
    assert reminders(customer) == []
    assert dunning(customer)[FINAL].status == QueueStatus.PENDING  # still waits for the end of the retries


def test_the_database_refuses_a_second_reminder_for_one_retry(publish):
    customer = CustomerFactory()
    fail(publish, customer, 1, timezone.now() + timedelta(days=3))
    [reminder] = reminders(customer)
    reminder.pk, reminder.idempotency_key = None, "email:another-key"
    with pytest.raises(IntegrityError):
        reminder.save()
