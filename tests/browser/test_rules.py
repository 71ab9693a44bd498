"""Marketing in a real browser: editing a rule's step delay in words, the rule's numbers, the analytics page and an
email in the queue shown as sent. Screenshots: rule-edit.png, analytics.png, queue-item.png."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from automations.models import EmailBatch, EnrollmentStatus, QueueStatus
from config.roles import MARKETING, roles_sync
from customers.models import Topic
from tests.automations.factories import (
    AutomationRuleFactory,
    AutomationStepFactory,
    EmailTemplateFactory,
    EnrollmentFactory,
    QueuedEmailFactory,
)
from tests.customers.factories import CustomerFactory, StaffUserFactory


@pytest.fixture
def marketer(transactional_db):
    roles_sync()
    user = StaffUserFactory(username="marketer")
    user.groups.add(Group.objects.get(name=MARKETING))
    return user


@pytest.fixture
def rule(transactional_db):
    # Its steps are marketing email, so the rule names their topic (the form refuses a marketing step without one).
    topic, _ = Topic.objects.get_or_create(slug="product-news", defaults={"name": "Product news"})
    rule = AutomationRuleFactory(name="Trial ending", trigger="subscription.trial_will_end", topic=topic)
    template = EmailTemplateFactory(name="Trial ends soon")
    first = AutomationStepFactory(rule=rule, order=1, delay=timedelta(0), template=template)
    AutomationStepFactory(rule=rule, order=2, delay=timedelta(days=1), template=EmailTemplateFactory(name="Last day"))
    sent_at = timezone.now() - timedelta(hours=2)
    for n, status in enumerate([EnrollmentStatus.ACTIVE] * 3 + [EnrollmentStatus.COMPLETED, EnrollmentStatus.EXITED]):
        enrollment = EnrollmentFactory(rule=rule, status=status, customer=CustomerFactory(name=f"Player {n}"))
        QueuedEmailFactory(
            enrollment=enrollment,
            step=first,
            status=QueueStatus.SENT,
            sent_at=sent_at,
            opened_at=sent_at if n < 3 else None,
            clicked_at=sent_at if n == 0 else None,
        )
    return rule


def test_marketing_edits_a_step_delay_in_words_and_sees_it_back(login, marketer, rule, screenshot):
    page = login(marketer)
    page.goto(f"/admin/automations/automationrule/{rule.pk}/change/")
    delay = page.locator("#id_steps-0-delay")
    assert delay.input_value() == "0 minutes"
    assert page.locator("#id_steps-1-delay").input_value() == "1 day"

    delay.fill("3 days 4 hours")
    page.click("input[name=_continue]")
    page.wait_for_load_state()

    assert "was changed successfully" in page.locator(".messagelist").inner_text()
    assert page.locator("#id_steps-0-delay").input_value() == "3 days 4 hours"
    assert "3 days 4 hours after enrollment" in page.locator("#steps-group").inner_text()
    assert rule.steps.get(order=1).delay == timedelta(days=3, hours=4)

    # The rule's numbers: 5 enrolled, 3 of them in it now; the first step sent 5, opened 3, clicked 1.
    numbers = page.locator("#rule-numbers")
    for name, value in (("enrolled", "5"), ("active", "3"), ("completed", "1"), ("exited", "1")):
        assert numbers.locator(f"[data-number={name}]").inner_text() == value
    first_step = page.locator("#step-numbers tbody tr").first.inner_text()
    # sent, delivered (none reported yet: the rates are then of the sent ones), opened, clicked
    assert first_step.split("\t")[2:6] == ["5", "0", "3 60.0%", "1 20.0%"]
    assert page.locator("#enrolled-now li").count() == 3
    page.locator("#enrolled-now a").first.click()
    page.wait_for_load_state()
    assert "/admin/customers/customer/" in page.url
    page.go_back()
    assert page.console_errors == []
    screenshot(page, "rule-edit")


def test_a_nonsense_delay_is_refused_in_the_browser(login, marketer, rule):
    page = login(marketer)
    page.goto(f"/admin/automations/automationrule/{rule.pk}/change/")
    page.locator("#id_steps-0-delay").fill("3 dayz")
    page.click("input[name=_continue]")
    page.wait_for_load_state()
    assert "'dayz' is not a unit" in page.locator("#steps-group").inner_text()
    assert rule.steps.get(order=1).delay == timedelta(0)


def test_the_analytics_page_loads_with_the_rule_numbers(login, marketer, rule, screenshot):
    page = login(marketer)
    page.goto("/admin/automations/automationrule/analytics/")
    assert page.locator("h1").inner_text() == "Email analytics"
    table = page.locator("table.analytics").inner_text()
    assert "Trial ending" in table and "1. Trial ends soon" in table
    assert page.locator("svg polyline").count() == 3
    assert page.console_errors == []
    screenshot(page, "analytics")


def test_a_queue_item_shows_its_email_as_sent(login, marketer, rule, screenshot):
    item = rule.steps.get(order=1).queue_items.first()
    message = {
        "from": "ModReady <hello@modready.example>",
        "to": [item.recipient],
        "subject": "Your trial ends in 3 days",
        "html": "<h1 id='greeting'>Hi Player</h1><p>Your trial ends soon.</p><script>document.title='ran'</script>",
        "text": "Hi Player, your trial ends soon.",
        "headers": {"X-Entity-Ref-ID": item.idempotency_key},
    }
    batch = EmailBatch.objects.create(
        idempotency_key="email-batch:test",
        provider_idempotency_key=item.idempotency_key,
        status="sent",
        messages=[{"item_id": item.pk, "message": message}],
        lease_expires_at=timezone.now(),
        next_attempt_at=timezone.now(),
    )
    item.batch = batch
    item.save(update_fields=["batch"])

    page = login(marketer)
    page.goto(f"/admin/automations/emailqueueitem/{item.pk}/change/")
    assert page.locator("#email-subject").inner_text() == "Your trial ends in 3 days"
    frame = page.frame_locator("#email-html")
    assert frame.locator("#greeting").inner_text() == "Hi Player"
    assert page.evaluate("() => document.getElementById('email-html').contentDocument") is None  # sandboxed
    assert page.locator("#email-text").inner_text() == "Hi Player, your trial ends soon."
    screenshot(page, "queue-item")
