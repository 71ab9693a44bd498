"""Automations admin: who sees it, step validation, template preview and test sends, queue actions, analytics."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from automations.models import AutomationRule, AutomationStep, EmailQueueItem, EmailTemplate, QueueStatus
from tests.customers.factories import CustomerFactory, StaffUserFactory

from .conftest import subscription_payload

pytestmark = pytest.mark.django_db

# Marketing's pages; Support reads the emails sent (queue, events, suppressions, analytics) but not the rest.
SUPPORT_READS = [
    "admin:automations_emailqueueitem_changelist",
    "admin:automations_emailevent_changelist",
    "admin:automations_suppression_changelist",
]
PAGES = [
    "admin:automations_analytics",  # Marketing's: it needs view on rules as well as on the queue
    "admin:automations_automationrule_changelist",
    "admin:automations_emailtemplate_changelist",
    "admin:automations_enrollment_changelist",
    *SUPPORT_READS,
]


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("owner", "owner@modready.example", "pw-owner-123")


@pytest.mark.parametrize("page", PAGES)
def test_marketing_sees_the_automations_admin_and_support_does_not(client, marketing_user, support_user, page):
    url = reverse(page)
    client.force_login(marketing_user)
    assert client.get(url).status_code == 200
    client.force_login(support_user)
    assert client.get(url).status_code == (200 if page in SUPPORT_READS else 403)
    client.logout()
    assert client.get(url).status_code == 302


def test_marketing_can_open_a_rule_with_its_steps_and_a_template_preview(client, marketing_user, customer):
    client.force_login(marketing_user)
    rule = AutomationRule.objects.get(name="Dunning")
    page = client.get(reverse("admin:automations_automationrule_change", args=[rule.pk]))
    assert page.status_code == 200
    assert b"Dunning 3 - final notice" in page.content
    template = EmailTemplate.objects.get(name="Welcome")
    preview = client.get(
        reverse("admin:automations_emailtemplate_preview", args=[template.pk]), {"customer": customer.pk}
    )
    assert preview.status_code == 200
    assert f"Welcome to ModReady, {customer.name.split()[0]}".encode() in preview.content


def rule_form(rule, steps):
    data = {
        "name": rule.name,
        "description": rule.description,
        "enabled": "on",
        "trigger": rule.trigger,
        "reentry": rule.reentry,
        "exit_events": ["payment.recovered", "subscription.canceled"],
        "condition_product_ids": ["prod_A", "prod_B"],
        "condition_lifecycle_stages": ["active", "at_risk"],
        "condition_vip": "true",
        "topic": rule.topic_id or "",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for i, (order, delay, template) in enumerate(steps):
        data.update(
            {
                f"steps-{i}-order": order,
                f"steps-{i}-delay": delay,
                f"steps-{i}-anchor": "enrollment",
                f"steps-{i}-template": template.pk,
            }
        )
    return data


@pytest.fixture(autouse=True)
def synced_products(db):
    from tests.automations.factories import synced_product

    return [synced_product("prod_A", "Modded 8 GB"), synced_product("prod_B", "Vanilla 4 GB")]


@pytest.fixture
def empty_rule():
    return AutomationRule.objects.create(name="Trial ending", trigger="subscription.trial_will_end")


def test_a_marketing_step_needs_the_rules_topic_and_a_transactional_one_does_not(client, marketing_user, empty_rule):
    from customers.models import Topic

    client.force_login(marketing_user)
    url = reverse("admin:automations_automationrule_change", args=[empty_rule.pk])
    offer = EmailTemplate.objects.get(name="Win-back 3 - come back offer")  # marketing
    refused = client.post(url, rule_form(empty_rule, [(1, "0", offer)]))
    assert refused.status_code == 200 and b"A marketing email needs a topic" in refused.content
    assert not empty_rule.steps.exists()
    empty_rule.topic = Topic.objects.get(slug="offers")
    assert client.post(url, {**rule_form(empty_rule, [(1, "0", offer)]), "when_held": "skip"}).status_code == 302
    empty_rule.refresh_from_db()
    assert (empty_rule.topic.slug, empty_rule.when_held, empty_rule.steps.count()) == ("offers", "skip", 1)


def test_the_rule_form_saves_valid_steps(client, marketing_user, empty_rule):
    client.force_login(marketing_user)
    welcome = EmailTemplate.objects.get(name="Welcome")
    response = client.post(
        reverse("admin:automations_automationrule_change", args=[empty_rule.pk]),
        rule_form(empty_rule, [(1, "0", welcome), (2, "2 00:00:00", welcome)]),
    )
    assert response.status_code == 302
    assert list(empty_rule.steps.values_list("order", "delay")) == [(1, timedelta(0)), (2, timedelta(days=2))]
    empty_rule.refresh_from_db()
    assert empty_rule.exit_events == ["payment.recovered", "subscription.canceled"]
    assert empty_rule.condition_product_ids == ["prod_A", "prod_B"]
    assert empty_rule.condition_lifecycle_stages == ["active", "at_risk"]
    assert empty_rule.condition_vip is True


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([(1, "-1 00:00:00", "Welcome")], b"A delay cannot be negative."),
        ([(1, "0", "Welcome"), (1, "1 00:00:00", "Setup tips")], b"Two steps have order 1"),
        ([(1, "0", "Broken")], b"does not compile"),
    ],
)
def test_the_rule_form_refuses_bad_steps(client, marketing_user, empty_rule, steps, message):
    EmailTemplate.objects.create(name="Broken", subject="Hi", html_body="{% if %}", text_body="x")
    client.force_login(marketing_user)
    resolved = [(order, delay, EmailTemplate.objects.get(name=name)) for order, delay, name in steps]
    response = client.post(
        reverse("admin:automations_automationrule_change", args=[empty_rule.pk]), rule_form(empty_rule, resolved)
    )
    assert response.status_code == 200
    assert message in response.content
    assert not AutomationStep.objects.filter(rule=empty_rule).exists()


def test_the_template_form_refuses_templates_that_reach_for_python_internals(client, marketing_user):
    client.force_login(marketing_user)
    response = client.post(
        reverse("admin:automations_emailtemplate_add"),
        {
            "name": "Sneaky",
            "category": "marketing",
            "subject": "Hello",
            "preheader": "",
            "html_body": "{{ customer.__class__.__mro__ }}",
            "text_body": "Hi",
        },
    )
    assert response.status_code == 200
    assert b"SecurityError" in response.content
    assert not EmailTemplate.objects.filter(name="Sneaky").exists()


def test_send_me_a_test_goes_to_the_staff_member_only(client, marketing_user, customer):
    client.force_login(marketing_user)
    template = EmailTemplate.objects.get(name="Win-back 3 - come back offer")
    response = client.post(
        reverse("admin:automations_emailtemplate_preview", args=[template.pk]), {"customer": customer.pk}
    )
    assert response.status_code == 302
    (sent,) = mail.outbox
    assert sent.to == [marketing_user.email]
    assert sent.subject == f"[Test] {customer.name.split()[0]}, your first month back is on us"
    assert not EmailQueueItem.objects.exists()


def test_queue_actions_retry_failed_and_cancel_pending(client, superuser, publish, run_on_commit):
    customer = CustomerFactory()
    EmailTemplate.objects.filter(name="Welcome").update(html_body="{{ nope }}")
    publish("subscription.created", customer, subscription_payload())
    welcome = EmailQueueItem.objects.get(step__order=1)
    tips = EmailQueueItem.objects.get(step__order=2)
    assert welcome.status == QueueStatus.FAILED

    EmailTemplate.objects.filter(name="Welcome").update(html_body="<p>Welcome!</p>")
    client.force_login(superuser)
    url = reverse("admin:automations_emailqueueitem_changelist")
    with run_on_commit():
        client.post(url, {"action": "retry_now", "_selected_action": [welcome.pk]})
        client.post(url, {"action": "cancel_pending", "_selected_action": [tips.pk]})

    welcome.refresh_from_db()
    tips.refresh_from_db()
    assert welcome.status == QueueStatus.SENT  # retried at once (the enqueue runs inline in tests)
    assert tips.status == QueueStatus.CANCELLED
    assert [m.to for m in mail.outbox] == [[customer.email]]


def test_queue_filters(client, marketing_user, publish):
    publish("subscription.created", CustomerFactory(), subscription_payload())
    client.force_login(marketing_user)
    url = reverse("admin:automations_emailqueueitem_changelist")
    rule = AutomationRule.objects.get(name="Welcome")
    assert client.get(url, {"status__exact": "pending", "due": "later"}).context["cl"].result_count == 1
    assert client.get(url, {"due": "now"}).context["cl"].result_count == 0
    assert client.get(url, {"enrollment__rule__id__exact": rule.pk}).context["cl"].result_count == 2


def test_analytics_counts_per_rule_and_step(client, marketing_user, resend, publish, drain):
    from automations.services.tracking import email_event_record

    customers = CustomerFactory.create_batch(4)
    for customer in customers:
        publish("subscription.created", customer, subscription_payload())
    items = list(EmailQueueItem.objects.filter(step__order=1).order_by("pk"))
    now = timezone.now()
    for n, item in enumerate(items):
        email_event_record(
            event_type="delivered",
            provider_event_id=f"d{n}",
            provider_message_id=item.provider_message_id,
            occurred_at=now,
        )
    for n, item in enumerate(items[:3]):
        email_event_record(
            event_type="opened",
            provider_event_id=f"o{n}",
            provider_message_id=item.provider_message_id,
            occurred_at=now + timedelta(hours=1),
        )
    email_event_record(
        event_type="opened",
        provider_event_id="o-again",
        provider_message_id=items[0].provider_message_id,
        occurred_at=now + timedelta(hours=2),
    )
    email_event_record(
        event_type="clicked",
        provider_event_id="c0",
        provider_message_id=items[0].provider_message_id,
        occurred_at=now + timedelta(hours=2),
        url="https://x.example",
    )

    client.force_login(marketing_user)
    response = client.get(reverse("admin:automations_analytics"))
    assert response.status_code == 200
    analytics = response.context["analytics"]
    (welcome,) = analytics.rules
    step1 = welcome.steps[0].stats
    assert (step1.sent, step1.delivered, step1.opened, step1.human_opened, step1.clicked) == (4, 4, 3, 3, 1)
    assert step1.rate("opened") == 0.75
    assert analytics.days[-1][1:] == (4, 3, 1)
    assert b"<svg" in response.content
    assert b"cdn" not in response.content.lower()


def test_marketing_adds_a_manual_suppression_and_support_reads_queue_items(
    client, marketing_user, support_user, publish
):
    client.force_login(marketing_user)
    response = client.post(
        reverse("admin:automations_suppression_add"), {"email": "Someone@Example.com", "reason": "manual", "note": ""}
    )
    assert response.status_code == 302
    from automations.models import Suppression

    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.reason) == ("someone@example.com", "manual")
    assert suppression.note == f"Added by {marketing_user.username}"

    publish("subscription.created", CustomerFactory(), subscription_payload())
    pending = EmailQueueItem.objects.get(status=QueueStatus.PENDING)
    client.force_login(support_user)
    page = client.get(reverse("admin:automations_emailqueueitem_change", args=[pending.pk]))
    assert page.status_code == 200
    # Reading the queue is not changing it: the cancel action is not offered to view-only staff.
    reader = StaffUserFactory()
    reader.user_permissions.add(Permission.objects.get(codename="view_emailqueueitem"))
    client.force_login(reader)
    client.post(
        reverse("admin:automations_emailqueueitem_changelist"),
        {"action": "cancel_pending", "_selected_action": [pending.pk]},
    )
    assert client.post(reverse("admin:automations_emailqueueitem_cancel", args=[pending.pk])).status_code == 403
    pending.refresh_from_db()
    assert pending.status == QueueStatus.PENDING


def test_rates_divide_deliveries_by_sent_and_engagement_by_delivered():
    from automations.selectors import Stats

    stats = Stats(sent=10, delivered=8, opened=4, human_opened=2, clicked=1, bounced=2, complained=0, unsubscribed=1)
    assert stats.rate("delivered") == 0.8
    assert stats.rate("bounced") == 0.2
    assert stats.rate("opened") == 0.5
    assert stats.rate("human_opened") == 0.25
    assert Stats().rate("opened") is None


def test_analytics_says_what_opens_and_bounces_are(client, marketing_user, settings):
    settings.AUTOMATIONS_MACHINE_OPEN_SECONDS = 12
    client.force_login(marketing_user)
    page = client.get(reverse("admin:automations_analytics")).content.decode()
    assert "Clicks are the reliable engagement figure" in page
    assert "Opens (may include proxies)" in page and "Resend reports no user agent or IP for an open" in page
    assert "within 12 seconds of delivery" in page
    for column in ("Hard bounces", "Soft bounces", "Failed", "Suppressed by Resend"):
        assert f'<th class="num">{column}</th>' in page
    assert "Human opens" not in page
