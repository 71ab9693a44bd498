"""Issue 18 in a real browser: Support sees a hard-bounced customer's payment emails shown blocked with the reason and
corrects the address (written to the fake Stripe); Marketing pauses a rule, sees its emails paused on the customer
page and the rule list, and resumes it. Screenshots: customer-blocked.png, rule-paused.png."""

from datetime import timedelta

import pytest
import stripe
from django.contrib.auth.models import Group
from django.utils import timezone

from automations.models import EmailQueueItem, QueueStatus, SuppressionReason, TemplateCategory
from automations.services.suppressions import suppression_add
from config.roles import MARKETING, SUPPORT, roles_sync
from devtools.fakes.stripe.server import FakeStripe
from tests.automations.factories import (
    AutomationRuleFactory,
    AutomationStepFactory,
    EmailTemplateFactory,
    EnrollmentFactory,
    QueuedEmailFactory,
)
from tests.customers.factories import CustomerFactory, StaffUserFactory


def staff(role: str, username: str):
    roles_sync()
    user = StaffUserFactory(username=username)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def fake_stripe(monkeypatch):
    with FakeStripe() as server:
        monkeypatch.setattr(stripe, "api_base", server.url)
        yield server


def in_dunning(customer):
    """A dunning sequence with its reminder waiting (due in two days)."""
    rule = AutomationRuleFactory(name="Payment reminders", trigger="payment.failed")
    template = EmailTemplateFactory(name="Payment failed reminder", category=TemplateCategory.TRANSACTIONAL)
    step = AutomationStepFactory(rule=rule, order=1, template=template, delay=timedelta(days=2))
    enrollment = EnrollmentFactory(rule=rule, customer=customer)
    due = timezone.now() + timedelta(days=2)
    return rule, QueuedEmailFactory(enrollment=enrollment, step=step, scheduled_at=due, next_attempt_at=due)


def test_support_sees_blocked_payment_emails_and_corrects_the_address(transactional_db, login, fake_stripe, screenshot):
    world = fake_stripe.add_subscription(email="robin@dead.example")
    customer = CustomerFactory(email="robin@dead.example", stripe_customer_id=world.customer["id"], name="Robin")
    suppression_add(email=customer.email, reason=SuppressionReason.HARD_BOUNCE)
    in_dunning(customer)
    page = login(staff(SUPPORT, "support"))
    page.goto(f"/admin/customers/customer/{customer.pk}/change/")

    assert "All email is blocked, payment and account emails too" in page.locator("#fact-consent").inner_text()
    row = page.locator(".email-row", has_text="Payment failed reminder")
    assert row.get_attribute("data-status") == "blocked"
    assert "Blocked" in row.inner_text() and "hard-bounced" in row.inner_text()
    assert "Pending" not in row.inner_text()
    assert "1 blocked" in page.locator("#emails .counts").inner_text()
    screenshot(page, "customer-blocked")

    form = page.locator("#action-email")
    form.locator("input[name=email]").fill("robin@alive.example")
    form.locator("input[name=reason]").fill("bounced; new address given in ticket #12")
    form.locator("input[type=submit]").click()
    page.wait_for_load_state()

    assert "corrected the email from robin@dead.example to robin@alive.example in Stripe and here" in (
        page.locator(".messagelist").inner_text()
    )
    assert fake_stripe.get(customer.stripe_customer_id)["email"] == "robin@alive.example"
    assert "robin@alive.example" in page.locator("#fact-who").inner_text()
    assert page.locator(".email-row", has_text="Payment failed reminder").get_attribute("data-status") == "pending"
    assert "All email is blocked" not in page.locator("#fact-consent").inner_text()
    assert page.console_errors == []


def test_marketing_pauses_a_rule_sees_its_emails_paused_and_resumes_it(transactional_db, login, screenshot):
    customer = CustomerFactory(name="Sam", opt_in_confirmed=True)
    rule, reminder = in_dunning(customer)
    page = login(staff(MARKETING, "marketer"))
    page.goto(f"/admin/automations/automationrule/{rule.pk}/change/")
    assert page.locator("#rule-state").get_attribute("data-rule-state") == "Running"
    assert "customers already in it still get its emails" in page.content()  # what unticking "Enabled" does

    page.click("#rule-pause")
    page.wait_for_load_state()
    assert "Paused: 1 waiting email(s) held" in page.locator(".messagelist").inner_text()
    assert page.locator("#rule-state").get_attribute("data-rule-state") == "Paused"
    assert page.locator("#step-numbers [data-unsent=paused]").first.inner_text() == "1"
    screenshot(page, "rule-paused")
    reminder.refresh_from_db()
    assert reminder.status == QueueStatus.PAUSED

    page.goto("/admin/automations/automationrule/")
    assert page.locator(f"tr:has-text('{rule.name}') [data-rule-state]").inner_text() == "Paused"
    page.goto(f"/admin/customers/customer/{customer.pk}/change/")
    assert page.locator(".email-row", has_text="Payment failed reminder").get_attribute("data-status") == "paused"

    page.goto(f"/admin/automations/automationrule/{rule.pk}/change/")
    page.click("#rule-resume")
    page.wait_for_load_state()
    assert "Resumed: 1 held email(s) released in step order; 0 skipped" in page.locator(".messagelist").inner_text()
    assert page.locator("#rule-state").get_attribute("data-rule-state") == "Running"
    assert EmailQueueItem.objects.get(pk=reminder.pk).status == QueueStatus.PENDING
    assert page.console_errors == []
