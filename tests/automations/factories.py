"""Factories for automations: templates, rules and steps, and emails already queued for a customer.

`QueuedEmailFactory` puts one due email in the queue the way an enrollment leaves it (enrollment, step, recipient,
idempotency key), without publishing a domain event: tests of the queue start from there, and nothing is enqueued
on commit behind their back.
"""

from datetime import timedelta

import factory
from django.utils import timezone

from automations.models import (
    AutomationRule,
    AutomationStep,
    EmailQueueItem,
    EmailTemplate,
    Enrollment,
    EnrollmentStatus,
    QueueStatus,
)
from automations.services.enrollment_policy import step_times
from tests.customers.factories import CustomerFactory


class EmailTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmailTemplate

    name = factory.Sequence(lambda n: f"Template {n}")
    subject = "Hello {{ customer.first_name }}"
    html_body = "<p>Hi {{ customer.first_name }}, your server is ready.</p>"
    text_body = "Hi {{ customer.first_name }}, your server is ready."


class AutomationRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AutomationRule

    name = factory.Sequence(lambda n: f"Rule {n}")
    trigger = "subscription.created"


class AutomationStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AutomationStep

    rule = factory.SubFactory(AutomationRuleFactory)
    order = factory.Sequence(lambda n: n + 1)
    delay = timedelta(0)
    template = factory.SubFactory(EmailTemplateFactory)


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    rule = factory.SubFactory(AutomationRuleFactory)
    customer = factory.SubFactory(CustomerFactory)
    scope_key = factory.LazyAttribute(lambda e: f"customer:{e.customer.pk}")
    status = EnrollmentStatus.ACTIVE
    enrolled_at = factory.LazyFunction(timezone.now)


class QueuedEmailFactory(factory.django.DjangoModelFactory):
    """One pending email, due now, for a step of the enrollment's rule."""

    class Meta:
        model = EmailQueueItem

    enrollment = factory.SubFactory(EnrollmentFactory)
    step = factory.SubFactory(AutomationStepFactory, rule=factory.SelfAttribute("..enrollment.rule"))
    customer = factory.SelfAttribute("enrollment.customer")
    recipient = factory.SelfAttribute("customer.email")
    scheduled_at = factory.LazyFunction(timezone.now)
    next_attempt_at = factory.SelfAttribute("scheduled_at")
    status = QueueStatus.PENDING
    idempotency_key = factory.LazyAttribute(lambda i: f"email:enrollment-{i.enrollment.pk}:step-{i.step.pk}")


def enrollment_with_emails(*, rule: AutomationRule, customer, context: dict | None = None) -> Enrollment:
    """`customer` enrolled in `rule` now, with one pending email per step, each due when the service would time it
    (its delay and anchor: a step anchored to Stripe's retries follows the context's `next_payment_attempt`)."""
    context = context or {}
    enrollment = EnrollmentFactory(
        rule=rule, customer=customer, context=context, subscription_id=context.get("subscription_id", "")
    )
    steps = list(rule.steps.order_by("order"))
    for step, due in zip(
        steps, step_times(steps=steps, enrolled_at=enrollment.enrolled_at, context=context), strict=True
    ):
        if due is not None:
            QueuedEmailFactory(enrollment=enrollment, step=step, scheduled_at=due, next_attempt_at=due)
    return enrollment


def synced_product(product_id: str, name: str, *, active: bool = True):
    """A product as billing's sync mirrors it from Stripe (dj-stripe's Product row)."""
    from djstripe.models import Product

    data = {"id": product_id, "object": "product", "name": name, "active": active, "type": "service"}
    return Product.objects.create(id=product_id, name=name, active=active, livemode=False, stripe_data=data)
