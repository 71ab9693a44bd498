"""Signing in to the admin in a real browser, with the admin's stylesheet and no script or CSP errors."""

from tests.customers.factories import StaffUserFactory


def test_staff_member_signs_in_and_sees_the_admin(login, superuser, screenshot):
    page = login(superuser)

    assert page.url.endswith("/admin/")
    assert page.locator("#user-tools").inner_text().upper().startswith("WELCOME")
    # The admin's own stylesheet was served (the header is styled, not a bare page).
    assert page.locator("#header").evaluate("el => getComputedStyle(el).backgroundColor") != "rgba(0, 0, 0, 0)"
    assert page.console_errors == []
    screenshot(page, "admin-front-page")


def test_wrong_password_is_refused_with_a_message(login, transactional_db):
    user = StaffUserFactory()
    page = login(user, password="not the password")

    assert "/admin/login/" in page.url
    assert "correct username and password" in page.locator(".errornote").inner_text()
