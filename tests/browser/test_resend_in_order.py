"""Resending a cancelled email in a real browser, as Marketing: the customer page offers "Put back for <its time>" and,
separately, "Send now instead" saying it goes ahead of time; the queue page's actions show a confirmation page that
says what will happen to each email before anything is done (issue 18)."""

from django.contrib.auth.models import Group

from automations.models import EmailQueueItem, QueueStatus
from customers.models import StaffAction
from tests.backoffice.customer_360_data import customer_with_history
from tests.customers.factories import StaffUserFactory


def marketing(transactional_db_user_name="marketer"):
    user = StaffUserFactory(username=transactional_db_user_name)
    user.groups.add(Group.objects.get(name="Marketing"))
    return user


def test_a_cancelled_email_goes_back_at_its_own_time_from_the_customer_page(login, transactional_db, screenshot):
    customer, _, pending = customer_with_history(2, email="kim.browser@example.com")
    EmailQueueItem.objects.filter(pk=pending.pk).update(status=QueueStatus.CANCELLED, last_error="Cancelled by staff")
    own_time = f"{pending.scheduled_at:%Y-%m-%d %H:%M}"
    page = login(marketing())
    page.goto(f"/admin/customers/customer/{customer.pk}/change/")

    row = page.locator(".email-row[data-status=cancelled]")
    put_back = row.locator("form").first
    assert put_back.locator("input[type=submit]").get_attribute("value") == f"Put back for {own_time}"
    assert "ahead of its own time" in row.locator("form.send-now").inner_text()
    screenshot(page, "customer-360-cancelled-email-choices")

    put_back.locator("input[name=reason]").fill("offer fixed")
    put_back.locator("input[type=submit]").click()
    page.wait_for_load_state()

    assert "back in the queue for its own time" in page.locator(".messagelist").inner_text()
    copy = EmailQueueItem.objects.exclude(pk=pending.pk).get(enrollment=pending.enrollment, step=pending.step)
    assert copy.status == QueueStatus.PENDING and copy.scheduled_at == pending.scheduled_at
    assert StaffAction.objects.get(customer=customer, action="email_resend").reason == "offer fixed"
    assert page.console_errors == []


def test_the_queue_page_says_what_send_now_will_do_before_doing_it(login, transactional_db, screenshot):
    _customer, _, pending = customer_with_history(3, email="lee.browser@example.com")
    EmailQueueItem.objects.filter(pk=pending.pk).update(status=QueueStatus.CANCELLED, last_error="Cancelled by staff")
    page = login(marketing("marketer2"))
    page.goto("/admin/automations/emailqueueitem/?status__exact=cancelled")

    page.locator(f"input[name=_selected_action][value='{pending.pk}']").check()
    page.locator("select[name=action]").select_option("send_now")
    page.locator("button[name=index]").click()
    page.wait_for_load_state()

    plan = page.locator("#resend-plan").inner_text()
    assert "AHEAD of its own time" in plan and "lee.browser@example.com" in plan
    assert EmailQueueItem.objects.filter(step=pending.step).count() == 1  # nothing done yet
    screenshot(page, "queue-send-now-confirmation")

    page.locator("#id_reason").fill("customer asked on the phone")
    page.locator("#confirm-resend").click()
    page.wait_for_load_state()

    assert "queued again" in page.locator(".messagelist").inner_text()
    copy = EmailQueueItem.objects.exclude(pk=pending.pk).get(enrollment=pending.enrollment, step=pending.step)
    # Due at once (the queue ran already: this customer unsubscribed from marketing, so it was held as suppressed).
    assert copy.scheduled_at < pending.scheduled_at and copy.status != QueueStatus.PENDING
    assert page.console_errors == []
