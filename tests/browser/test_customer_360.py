"""The customer 360 in a real browser: the header facts, and each quick action through its own form."""

from datetime import timedelta

from automations.models import Enrollment, EnrollmentStatus, QueueStatus, Suppression
from customers.models import StaffAction
from tests.automations.factories import AutomationRuleFactory, AutomationStepFactory
from tests.backoffice.customer_360_data import customer_with_history


def submit(page, form, reason: str) -> str:
    form.locator("input[name=reason]").fill(reason)
    form.locator("input[type=submit]").click()
    page.wait_for_load_state()
    return page.locator(".messagelist").inner_text()


def test_superuser_sees_the_360_and_takes_each_quick_action(login, superuser, screenshot):
    customer, _, pending = customer_with_history(2, email="robin.browser@example.com")
    rule = AutomationRuleFactory(name="Tips by hand", reentry="every_time")
    AutomationStepFactory(rule=rule, delay=timedelta(days=3))  # still waiting when we remove them
    page = login(superuser)
    page.goto(f"/admin/customers/customer/{customer.pk}/change/")

    assert "Onboarding" in page.locator("#fact-stage").inner_text()
    assert "Stripe retries 2031-03-04 05:06 UTC" in page.locator("#failed-payment").inner_text()
    assert "30.00 EUR" in page.locator("#fact-revenue").inner_text()
    stripe_link = page.locator("#fact-stripe a").get_attribute("href")
    assert stripe_link == f"https://dashboard.stripe.com/test/customers/{customer.stripe_customer_id}"
    assert page.locator("#edit-form").get_attribute("open") is None  # the form is there, folded away
    screenshot(page, "customer-360")

    # The waiting email is marketing to an unsubscribed address: shown blocked (it was "pending" before issue 18).
    message = submit(page, page.locator(".email-row[data-status=blocked] form"), "asked to pause")
    assert "cancelled" in message
    pending.refresh_from_db()
    assert pending.status == QueueStatus.CANCELLED

    assert "resent" in submit(page, page.locator(".email-row[data-status=sent] form").first, "did not arrive")

    enroll = page.locator("#action-enroll")
    enroll.locator("select[name=rule_id]").select_option(label="Tips by hand")
    assert "enrolled in Tips by hand" in submit(page, enroll, "wants tips")
    enrollment = Enrollment.objects.get(rule=rule, customer=customer)

    row = page.locator("#enrollments tr", has_text="Tips by hand")
    assert "removed from Tips by hand" in submit(page, row.locator("form"), "changed their mind")
    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.EXITED

    assert "lifted" in submit(page, page.locator("#suppressions form"), "re-subscribed by phone")
    assert not Suppression.objects.filter(email=customer.email).exists()

    assert "consent off" in submit(page, page.locator("#action-consent"), "asked to stop newsletters")

    stage = page.locator("#action-stage")
    stage.locator("select[name=to_stage]").select_option(label="Active")
    assert "to Active" in submit(page, stage, "renewal paid by bank transfer")
    customer.refresh_from_db()
    assert customer.lifecycle_stage == "active" and not customer.opt_in_confirmed

    assert StaffAction.objects.filter(customer=customer, actor=superuser).count() == 7
    assert page.locator("#staff-actions tbody tr").count() == 7
    assert page.console_errors == []
    screenshot(page, "customer-360-after-actions")
