"""What staff read, in a real browser: staff words, links a role can open, adding a colleague."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import mail

from billing.models import SubscriptionStatus
from customers.models import TimelineSource
from tests.billing.factories import SubscriptionFactory
from tests.customers.factories import CustomerFactory, StaffUserFactory, TimelineEventFactory


def test_the_customer_page_speaks_staff_words_and_shows_the_cancellation_comment(login, superuser, screenshot):
    customer = CustomerFactory(email="words@example.com", lifecycle_stage="churned")
    TimelineEventFactory(customer=customer, source=TimelineSource.STRIPE, kind="payment.failed", summary="attempt 1")
    SubscriptionFactory(
        customer=customer,
        status=SubscriptionStatus.CANCELED,
        cancellation_feedback="unused",
        cancellation_comment="Our group stopped playing over the summer.",
    )
    page = login(superuser)
    page.goto(f"/admin/customers/customer/{customer.pk}/change/")

    timeline = page.locator("#timeline").inner_text()
    assert "Payment failed" in timeline and "payment.failed" not in timeline
    body = page.locator("#subscriptions").inner_text()
    assert "Not using the service enough" in body and "(unused)" not in body
    assert "Our group stopped playing over the summer." in body
    screenshot(page, "customer-words")


def test_the_menus_name_things_as_staff_do(login, superuser):
    page = login(superuser)
    menu = page.inner_text("#content-main").lower()  # the admin shows app names in capitals (CSS)
    assert "two-factor devices" in menu and "login lockouts" in menu
    assert "otp_totp" not in menu and "\naxes\n" not in menu
    assert "incoming webhooks" in menu and "sent webhooks" in menu and menu.count("webhook deliveries") == 0


def test_support_sees_no_link_it_cannot_open(login, transactional_db):
    user = StaffUserFactory()
    user.groups.add(Group.objects.get(name="Support"))
    page = login(user)
    assert page.locator("a", has_text="Analytics per rule and step").count() == 0


def test_an_owner_adds_a_marketing_colleague_from_the_staff_form(login, superuser, screenshot):
    page = login(superuser)
    page.goto("/admin/auth/user/")
    page.click("text=New staff member")
    page.fill("#id_name", "Kim Weber")
    page.fill("#id_email", "kim@modready.example")
    page.check("input[name=role][value=Marketing]")
    screenshot(page, "staff-new")
    page.click("input[type=submit]")
    page.wait_for_load_state()

    assert "can now sign in" in page.locator(".messagelist").inner_text()
    kim = get_user_model().objects.get(email="kim@modready.example")
    assert [g.name for g in kim.groups.all()] == ["Marketing"] and kim.is_staff
    assert [m.to for m in mail.outbox] == [["kim@modready.example"]]
