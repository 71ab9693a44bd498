"""Issue 18, "Pausing a rule": "Stop new enrollments" and "Pause" are two clear actions on the rule page. A pause holds
every pending email of the rule (shown as paused) and the queue sends none, including one a worker had in hand;
"Resume" releases them in step order and skips, with the reason, those later than the rule's limit. The rule list
shows each rule's state."""

import re
import threading
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from automations.models import AutomationRule, EmailQueueItem, Enrollment, EnrollmentStatus, QueueStatus
from tests.customers.factories import CustomerFactory, StaffUserFactory

from .conftest import payment_failed_payload
from .factories import AutomationRuleFactory, AutomationStepFactory, EnrollmentFactory, QueuedEmailFactory

pytestmark = pytest.mark.django_db


def rule_page(client, rule) -> str:
    return client.get(reverse("admin:automations_automationrule_change", args=[rule.pk])).content.decode()


def act(client, rule, action):
    return client.post(reverse("admin:automations_automationrule_state", args=[rule.pk, action]))


def said(response) -> str:
    return " ".join(str(message) for message in get_messages(response.wsgi_request))


def all_due_now():
    """Time passes: every email of every status is due (a held email must still not go out)."""
    EmailQueueItem.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))


@pytest.fixture
def dunning():
    return AutomationRule.objects.get(name="Dunning")


@pytest.fixture
def in_dunning(publish):
    """A customer in dunning: "payment failed" went out at once; the reminder and the last notice wait."""
    customer = CustomerFactory(opt_in_confirmed=True)
    publish("payment.failed", customer, payment_failed_payload())
    assert len(mail.outbox) == 1
    return customer


def test_the_page_says_unticking_enabled_only_stops_new_enrollments(client, marketing_user, dunning, in_dunning, drain):
    client.force_login(marketing_user)
    page = rule_page(client, dunning)
    assert "customers already in it still get its emails" in page
    assert 'id="rule-stop"' in page and ">Stop new enrollments<" in page and ">Pause<" in page

    response = act(client, dunning, "stop")
    assert "No new customers will start this sequence" in said(response)
    dunning.refresh_from_db()
    assert not dunning.enabled and dunning.paused_at is None
    assert 'data-rule-state="New enrollments stopped"' in rule_page(client, dunning)

    all_due_now()
    drain()
    assert len(mail.outbox) == 3  # the customer already in it got the rest of the sequence


def test_pause_holds_every_pending_email_and_the_queue_sends_none(
    client, marketing_user, admin_client, dunning, in_dunning, drain
):
    client.force_login(marketing_user)
    response = act(client, dunning, "pause")

    assert "Paused: 2 waiting email(s) held" in said(response)
    waiting = EmailQueueItem.objects.filter(customer=in_dunning).exclude(status=QueueStatus.SENT)
    assert set(waiting.values_list("status", flat=True)) == {QueueStatus.PAUSED}
    all_due_now()
    drain()
    assert len(mail.outbox) == 1

    customer_page = admin_client.get(reverse("admin:customers_customer_change", args=[in_dunning.pk])).content.decode()
    emails = customer_page[customer_page.index('id="emails"') : customer_page.index('id="enrollments"')]
    assert sorted(re.findall(r'data-status="([a-z]+)"', emails)) == ["paused", "paused", "sent"]
    assert "0 pending" in emails and "2 paused" in emails
    queue = admin_client.get(reverse("admin:automations_emailqueueitem_changelist"), {"q": in_dunning.email})
    assert queue.content.decode().count('data-status="paused"') == 2
    assert 'data-rule-state="Paused"' in rule_page(client, dunning)
    assert Enrollment.objects.get(customer=in_dunning).status == EnrollmentStatus.ACTIVE  # held, not finished


def test_an_email_queued_while_the_rule_is_paused_is_held_too(client, marketing_user, dunning, publish, drain):
    client.force_login(marketing_user)
    act(client, dunning, "pause")

    customer = CustomerFactory(opt_in_confirmed=True)
    publish("payment.failed", customer, payment_failed_payload())  # its first email is due now: the queue runs

    assert mail.outbox == []
    assert EmailQueueItem.objects.get(customer=customer, step__order=1).status == QueueStatus.PAUSED
    all_due_now()
    drain()
    assert mail.outbox == []
    statuses = set(EmailQueueItem.objects.filter(customer=customer).values_list("status", flat=True))
    assert statuses == {QueueStatus.PAUSED}


@pytest.mark.django_db(transaction=True)
def test_an_email_a_worker_holds_while_the_rule_is_paused_is_not_sent(client, drain):
    """A worker has the email locked (as the queue's claim does) when the pause is written: the pause cannot hold it
    (it skips rows a worker has), so the worker's claim must see the pause and hold it itself."""
    rule = AutomationRuleFactory(name="Launch news")
    step = AutomationStepFactory(rule=rule, order=1)
    item = QueuedEmailFactory(
        step=step, enrollment=EnrollmentFactory(rule=rule, customer=CustomerFactory(opt_in_confirmed=True))
    )
    locked, release = threading.Event(), threading.Event()

    def worker():
        try:
            with transaction.atomic():
                list(EmailQueueItem.objects.select_for_update().filter(pk=item.pk))
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    assert locked.wait(30)
    client.force_login(StaffUserFactory(is_superuser=True))  # a transactional test: the roles' groups are flushed
    response = act(client, rule, "pause")
    release.set()
    thread.join(30)

    assert "Paused: 0 waiting email(s) held" in said(response)
    drain()
    item.refresh_from_db()
    assert item.status == QueueStatus.PAUSED
    assert mail.outbox == []


def test_resume_releases_in_step_order_and_skips_emails_too_late(client, marketing_user, admin_client, drain):
    rule = AutomationRuleFactory(name="Onboarding tips", resume_skip_after=timedelta(days=2))
    steps = {order: AutomationStepFactory(rule=rule, order=order) for order in (1, 2, 3)}
    customer = CustomerFactory(opt_in_confirmed=True)
    enrollment = EnrollmentFactory(rule=rule, customer=customer)
    now = timezone.now()
    # Made in this order on purpose: step 3's email is older (lower id, earlier time) than step 2's.
    third = QueuedEmailFactory(enrollment=enrollment, step=steps[3], scheduled_at=now + timedelta(days=9))
    second = QueuedEmailFactory(enrollment=enrollment, step=steps[2], scheduled_at=now + timedelta(days=9))
    first = QueuedEmailFactory(enrollment=enrollment, step=steps[1], scheduled_at=now + timedelta(days=9))
    client.force_login(marketing_user)
    act(client, rule, "pause")
    # The pause lasted: step 1's moment passed five days ago, steps 3 and 2 three hours and one hour ago.
    for item, ago in ((first, timedelta(days=5)), (third, timedelta(hours=3)), (second, timedelta(hours=1))):
        EmailQueueItem.objects.filter(pk=item.pk).update(scheduled_at=now - ago)
    assert 'id="rule-resume"' in rule_page(client, rule)

    response = act(client, rule, "resume")

    assert "Resumed: 2 held email(s) released in step order; 1 skipped" in said(response)
    drain()
    sent = list(EmailQueueItem.objects.filter(status=QueueStatus.SENT).order_by("sent_at", "batch_id"))
    assert {item.pk for item in sent} == {second.pk, third.pk}
    assert [m.extra_headers["X-Entity-Ref-ID"] for m in mail.outbox] == [second.idempotency_key, third.idempotency_key]
    first.refresh_from_db()
    assert first.status == QueueStatus.CANCELLED
    assert "more than 2 days ago (the rule's limit for late emails)" in first.last_error
    page = admin_client.get(reverse("admin:customers_customer_change", args=[customer.pk])).content.decode()
    assert "Skipped when the rule was resumed" in page
    assert 'data-rule-state="Running"' in rule_page(client, rule)


def test_the_rule_list_shows_each_rules_state(admin_client):
    AutomationRuleFactory(name="A running")
    AutomationRuleFactory(name="B stopped", enabled=False)
    AutomationRuleFactory(name="C paused", paused_at=timezone.now(), paused_by="sam")
    AutomationRuleFactory(name="D both", enabled=False, paused_at=timezone.now(), paused_by="sam")

    page = admin_client.get(reverse("admin:automations_automationrule_changelist")).content.decode()

    states = dict(re.findall(r'>([ABCD] [a-z]+)</a>.*?data-rule-state="([^"]+)"', page, flags=re.S))
    assert states == {
        "A running": "Running",
        "B stopped": "New enrollments stopped",
        "C paused": "Paused",
        "D both": "Paused, new enrollments stopped",
    }


def test_a_sequence_that_ends_while_paused_cancels_its_held_emails(
    client, marketing_user, dunning, in_dunning, publish
):
    client.force_login(marketing_user)
    act(client, dunning, "pause")
    publish("payment.recovered", in_dunning, {"invoice_id": "in_1", "subscription_id": "sub_1", "product_id": "p"})

    held = EmailQueueItem.objects.filter(customer=in_dunning).exclude(status=QueueStatus.SENT)
    assert set(held.values_list("status", flat=True)) == {QueueStatus.CANCELLED}


def test_support_may_not_pause_a_rule(client, support_user, dunning):
    client.force_login(support_user)
    assert act(client, dunning, "pause").status_code == 403
    dunning.refresh_from_db()
    assert dunning.paused_at is None
