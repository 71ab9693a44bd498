"""From a domain event to enrollments and queued emails: matching, re-entry policies, exits, Stripe-timed dunning."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from automations.models import (
    AutomationRule,
    AutomationStep,
    EmailQueueItem,
    Enrollment,
    EnrollmentStatus,
    QueueStatus,
    ReentryPolicy,
    StepAnchor,
)
from customers.events import domain_event_dispatch
from tests.customers.factories import CustomerFactory

from .conftest import make_due, payment_failed_payload, subscription_payload

pytestmark = pytest.mark.django_db


def items_of(customer, rule_name):
    return list(
        EmailQueueItem.objects.filter(customer=customer, enrollment__rule__name=rule_name).order_by("step__order")
    )


def test_new_subscription_sends_welcome_now_and_queues_setup_tips_for_tomorrow(publish, customer):
    publish("subscription.created", customer, subscription_payload())

    welcome, tips = items_of(customer, "Welcome")
    assert welcome.status == QueueStatus.SENT
    assert [m.subject for m in mail.outbox] == [
        f"Welcome to ModReady, {customer.name.split()[0]} - your server is ready"
    ]
    assert mail.outbox[0].to == [customer.email]
    assert "Modded Server 8 GB" in mail.outbox[0].alternatives[0][0]
    assert tips.status == QueueStatus.PENDING
    assert timedelta(hours=23, minutes=59) < tips.scheduled_at - welcome.scheduled_at <= timedelta(hours=24, minutes=1)
    assert customer.timeline_events.filter(kind="email.sent").count() == 1


def test_the_same_event_dispatched_twice_enrolls_once(publish, customer):
    event = publish("subscription.created", customer, subscription_payload())
    from automations.services.enrollments import enrollments_start_for_event

    assert enrollments_start_for_event(event=event) == []
    domain_event_dispatch(event_id=event.pk)
    assert Enrollment.objects.filter(customer=customer).count() == 1
    assert len(mail.outbox) == 1


def test_once_per_subscription_allows_a_second_subscription_only(publish, customer):
    publish("subscription.created", customer, subscription_payload("sub_1"))
    publish("subscription.created", customer, subscription_payload("sub_1"))  # e.g. re-sent by Stripe under a new id
    publish("subscription.created", customer, subscription_payload("sub_2"))
    assert sorted(Enrollment.objects.filter(customer=customer).values_list("subscription_id", flat=True)) == [
        "sub_1",
        "sub_2",
    ]


def test_once_per_customer_enrolls_only_the_first_time(publish, customer):
    AutomationRule.objects.filter(name="Welcome").update(reentry=ReentryPolicy.ONCE_PER_CUSTOMER)
    publish("subscription.created", customer, subscription_payload("sub_1"))
    publish("subscription.created", customer, subscription_payload("sub_2"))
    assert Enrollment.objects.filter(customer=customer, rule__name="Welcome").count() == 1


def test_every_time_re_enters_after_the_sequence_ended_but_never_runs_twice_at_once(publish, customer):
    publish("payment.failed", customer, payment_failed_payload())
    publish("payment.failed", customer, payment_failed_payload(attempt_count=2))  # Stripe's retry failed too
    assert Enrollment.objects.filter(customer=customer, rule__name="Dunning").count() == 1

    publish("payment.recovered", customer, {"invoice_id": "in_1", "subscription_id": "sub_1"})
    publish("payment.failed", customer, payment_failed_payload(invoice_id="in_2"))  # next month
    statuses = list(
        Enrollment.objects.filter(customer=customer, rule__name="Dunning")
        .order_by("id")
        .values_list("status", flat=True)
    )
    assert statuses == [EnrollmentStatus.EXITED, EnrollmentStatus.ACTIVE]


def test_conditions_on_product_stage_and_vip(publish):
    rule = AutomationRule.objects.get(name="Welcome")
    rule.condition_product_ids = ["prod_vanilla"]
    rule.condition_lifecycle_stages = ["purchase", "onboarding"]
    rule.condition_vip = True
    rule.save()
    matching = CustomerFactory(vip_status=True, lifecycle_stage="purchase")
    wrong_product = CustomerFactory(vip_status=True, lifecycle_stage="purchase")
    wrong_stage = CustomerFactory(vip_status=True, lifecycle_stage="churned")
    not_vip = CustomerFactory(vip_status=False, lifecycle_stage="purchase")

    publish("subscription.created", matching, subscription_payload(product_id="prod_vanilla"))
    publish("subscription.created", wrong_product, subscription_payload(product_id="prod_modded"))
    publish("subscription.created", wrong_stage, subscription_payload(product_id="prod_vanilla"))
    publish("subscription.created", not_vip, subscription_payload(product_id="prod_vanilla"))

    assert list(Enrollment.objects.values_list("customer", flat=True)) == [matching.pk]


def test_a_disabled_rule_enrolls_nobody(publish, customer):
    AutomationRule.objects.filter(name="Welcome").update(enabled=False)
    publish("subscription.created", customer, subscription_payload())
    assert not Enrollment.objects.exists()
    assert mail.outbox == []


def test_recovery_exits_dunning_and_nothing_more_is_sent(publish, customer, drain):
    publish("payment.failed", customer, payment_failed_payload())
    assert len(mail.outbox) == 1  # the first dunning email goes out at once

    publish("payment.recovered", customer, {"invoice_id": "in_1", "subscription_id": "sub_1", "product_id": "p"})
    make_due()
    drain()

    enrollment = Enrollment.objects.get(customer=customer, rule__name="Dunning")
    assert enrollment.status == EnrollmentStatus.EXITED
    assert "payment.recovered" in enrollment.exit_reason
    assert [i.status for i in items_of(customer, "Dunning")] == [
        QueueStatus.SENT,
        QueueStatus.CANCELLED,
        QueueStatus.CANCELLED,
    ]
    assert len(mail.outbox) == 1


def test_recovery_of_another_subscription_does_not_stop_dunning(publish, customer):
    publish("payment.failed", customer, payment_failed_payload("sub_A"))
    publish("payment.recovered", customer, {"invoice_id": "in_9", "subscription_id": "sub_B"})
    assert Enrollment.objects.get(customer=customer, rule__name="Dunning").status == EnrollmentStatus.ACTIVE


def test_a_new_subscription_ends_win_back(publish, customer):
    publish("subscription.canceled", customer, {"subscription_id": "sub_1", "product_id": "prod_modded"})
    assert [i.status for i in items_of(customer, "Win-back")] == [QueueStatus.PENDING] * 3

    publish("subscription.created", customer, subscription_payload("sub_2"))
    assert [i.status for i in items_of(customer, "Win-back")] == [QueueStatus.CANCELLED] * 3
    assert Enrollment.objects.get(customer=customer, rule__name="Win-back").status == EnrollmentStatus.EXITED


def test_dunning_step_timed_to_stripes_next_payment_attempt_follows_each_new_attempt(publish, customer):
    rule = AutomationRule.objects.get(name="Dunning")
    AutomationStep.objects.filter(rule=rule, order=2).update(
        anchor=StepAnchor.NEXT_PAYMENT_ATTEMPT, delay=timedelta(hours=2)
    )
    first_retry = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    publish("payment.failed", customer, payment_failed_payload(next_payment_attempt=first_retry.isoformat()))
    step2 = EmailQueueItem.objects.get(customer=customer, step__order=2)
    assert step2.scheduled_at == first_retry + timedelta(hours=2)

    second_retry = first_retry + timedelta(days=2)
    publish(
        "payment.failed",
        customer,
        payment_failed_payload(attempt_count=2, next_payment_attempt=second_retry.isoformat()),
    )
    step2.refresh_from_db()
    assert step2.scheduled_at == step2.next_attempt_at == second_retry + timedelta(hours=2)
    assert Enrollment.objects.filter(customer=customer, rule__name="Dunning").count() == 1


def test_enrollment_completes_when_its_last_email_is_sent(publish, customer, drain):
    publish("subscription.created", customer, subscription_payload())
    make_due()
    drain()
    enrollment = Enrollment.objects.get(customer=customer)
    assert enrollment.status == EnrollmentStatus.COMPLETED
    assert enrollment.completed_at is not None
    assert len(mail.outbox) == 2
