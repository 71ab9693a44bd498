"""History is never deleted: steps and templates with emails are retired, not deleted, and keep their numbers."""

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db.models import ProtectedError
from django.urls import reverse
from django.utils import timezone

from automations.forms import format_delay
from automations.models import AutomationRule, AutomationStep, EmailQueueItem, EmailTemplate, Enrollment, QueueStatus
from automations.services.enrollments import enrollment_start
from automations.services.rules import step_retire
from customers.events import domain_event_publish
from tests.customers.factories import CustomerFactory

from .conftest import make_due, subscription_payload

pytestmark = pytest.mark.django_db


def enroll(rule, customer=None):
    customer = customer or CustomerFactory()
    with (
        mock.patch("customers.events._enqueue_dispatch"),
        mock.patch("automations.services.enrollments.queue_process_enqueue"),
    ):
        event, _ = domain_event_publish(
            name=rule.trigger,
            key=f"seed:{rule.pk}:{customer.pk}",
            customer=customer,
            payload=subscription_payload(f"sub_{customer.pk}"),
        )
        return enrollment_start(rule=rule, event=event)


@pytest.fixture
def rule():
    """A two-step sequence whose first step has sent an email and whose second has not been used yet."""
    rule = AutomationRule.objects.create(name="Trial ending", trigger="subscription.trial_will_end")
    fields = {"category": "transactional", "html_body": "<p>x</p>", "text_body": "x"}
    news = EmailTemplate.objects.create(name="News", subject="News", **fields)
    tips = EmailTemplate.objects.create(name="Tips", subject="Tips", **fields)
    sent = AutomationStep.objects.create(rule=rule, order=1, template=news)
    enroll(rule)
    EmailQueueItem.objects.filter(step=sent).update(status=QueueStatus.SENT, sent_at=timezone.now())
    AutomationStep.objects.create(rule=rule, order=2, template=tips, delay=timedelta(days=1))
    return rule


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("owner", "owner@modready.example", "pw-owner-123")


def step_forms(rule, *, delete=(), retire=()):
    steps = list(rule.steps.order_by("order"))
    data = {
        "name": rule.name,
        "description": "",
        "enabled": "on",
        "trigger": rule.trigger,
        "reentry": rule.reentry,
        "condition_vip": "unknown",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": str(len(steps)),
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for i, step in enumerate(steps):
        data.update(
            {
                f"steps-{i}-id": step.pk,
                f"steps-{i}-rule": rule.pk,
                f"steps-{i}-order": step.order,
                f"steps-{i}-delay": format_delay(step.delay),
                f"steps-{i}-anchor": step.anchor,
                f"steps-{i}-template": step.template_id,
            }
        )
        if step.order in delete:
            data[f"steps-{i}-DELETE"] = "on"
        if step.order in retire or step.retired:
            data[f"steps-{i}-retired"] = "on"
    return data


def test_deleting_a_step_with_sent_emails_in_the_rule_form_is_refused(client, marketing_user, rule):
    client.force_login(marketing_user)
    response = client.post(
        reverse("admin:automations_automationrule_change", args=[rule.pk]), step_forms(rule, delete=[1])
    )
    assert response.status_code == 200
    assert b"Step 1 has sent or queued emails and cannot be deleted" in response.content
    assert rule.steps.filter(order=1).exists()
    assert EmailQueueItem.objects.filter(step__rule=rule, status=QueueStatus.SENT).count() == 1


def test_deleting_a_step_without_history_still_works(client, marketing_user, rule):
    client.force_login(marketing_user)
    response = client.post(
        reverse("admin:automations_automationrule_change", args=[rule.pk]), step_forms(rule, delete=[2])
    )
    assert response.status_code == 302
    assert list(rule.steps.values_list("order", flat=True)) == [1]


def test_the_database_refuses_deleting_history_by_any_path(rule):
    step = rule.steps.get(order=1)
    with pytest.raises(ProtectedError):
        step.delete()
    with pytest.raises(ProtectedError):
        step.template.delete()
    with pytest.raises(ProtectedError):  # the rule's enrollments and their emails are history too
        rule.delete()
    assert EmailQueueItem.objects.filter(step=step).count() == 1


def test_a_template_without_history_can_be_deleted_and_one_with_history_cannot(client, superuser, rule):
    unused = EmailTemplate.objects.create(name="Unused", subject="x", html_body="x", text_body="x")
    client.force_login(superuser)
    gone = client.post(reverse("admin:automations_emailtemplate_delete", args=[unused.pk]), {"post": "yes"})
    assert gone.status_code == 302 and not EmailTemplate.objects.filter(pk=unused.pk).exists()
    used = rule.steps.get(order=1).template
    refused = client.post(reverse("admin:automations_emailtemplate_delete", args=[used.pk]), {"post": "yes"})
    assert refused.status_code == 200  # Django's "cannot delete: protected related objects" page
    assert b"Cannot delete" in refused.content
    assert EmailTemplate.objects.filter(pk=used.pk).exists()


def test_a_retired_step_queues_no_new_emails_and_its_pending_ones_are_cancelled(client, marketing_user, rule):
    pending = enroll(rule)  # a second customer: step 1 and step 2 pending
    client.force_login(marketing_user)
    response = client.post(
        reverse("admin:automations_automationrule_change", args=[rule.pk]), step_forms(rule, retire=[2])
    )
    assert response.status_code == 302
    assert rule.steps.get(order=2).retired
    assert pending.queue_items.get(step__order=2).status == QueueStatus.CANCELLED
    assert pending.queue_items.get(step__order=1).status == QueueStatus.PENDING

    fresh = enroll(rule)
    assert list(fresh.queue_items.values_list("step__order", flat=True)) == [1]

    page = client.get(reverse("admin:automations_automationrule_change", args=[rule.pk]))
    assert b"#2: Tips (retired)" in page.content
    assert re.search(rb'<input[^>]*name="steps-1-retired"[^>]*checked', page.content)


def test_a_retired_step_keeps_its_numbers_on_the_analytics_page(client, marketing_user, rule):
    client.force_login(marketing_user)
    client.post(reverse("admin:automations_automationrule_change", args=[rule.pk]), step_forms(rule, retire=[1]))
    page = client.get(reverse("admin:automations_analytics"), {"rule": rule.pk})
    (row,) = page.context["analytics"].rules
    assert row.steps[0].label == "1. News (retired)" and row.steps[0].stats.sent == 1
    assert b"1. News (retired)" in page.content


def test_a_retired_template_cannot_serve_an_active_step(rule):
    template = rule.steps.get(order=1).template
    template.retired = True
    with pytest.raises(Exception, match="retire them first"):
        template.full_clean()
    rule.steps.update(retired=True)
    template.full_clean()  # every step using it is retired: the template may retire too
    template.save()
    step = AutomationStep(rule=rule, order=3, template=template)
    with pytest.raises(Exception, match="is retired"):
        step.full_clean()


def test_a_rule_without_history_can_still_be_deleted():
    rule = AutomationRule.objects.create(name="Draft", trigger="subscription.created")
    AutomationStep.objects.create(rule=rule, order=1, template=EmailTemplate.objects.get(name="Welcome"))
    rule.delete()
    assert not Enrollment.objects.filter(rule_id=rule.pk).exists()
    assert not AutomationRule.objects.filter(name="Draft").exists()


def test_processing_the_queue_after_a_retirement_sends_nothing_for_the_retired_step(rule, resend, drain):
    enrollment = enroll(rule)
    step_retire(step_id=rule.steps.get(order=2).pk)
    make_due()
    drain()
    assert not enrollment.queue_items.filter(step__order=2, status=QueueStatus.SENT).exists()
    assert enrollment.queue_items.get(step__order=1).status == QueueStatus.SENT


def test_retry_now_does_not_bring_back_emails_of_a_retired_step(rule):
    from automations.services.queue_items import queue_items_retry_now

    enrollment = enroll(rule)
    item = enrollment.queue_items.get(step__order=2)
    EmailQueueItem.objects.filter(pk=item.pk).update(status=QueueStatus.FAILED)
    step_retire(step_id=item.step_id)
    assert queue_items_retry_now(item_ids=[item.pk]) == 0
    item.refresh_from_db()
    assert item.status == QueueStatus.FAILED
