"""Support and Marketing each see exactly their pages, on the front page and in the sidebar; a page outside their
role answers with the admin's navigation, not a bare 403."""

import pytest
from django.contrib.auth.models import Group

from config.roles import MARKETING, SUPPORT, roles_sync
from tests.config.test_roles import MARKETING_PAGES, SUPPORT_PAGES, _registered
from tests.customers.factories import StaffUserFactory

PAGE_LINKS = """selector => Array.from(document.querySelectorAll(selector)).map(a => {
    const parts = new URL(a.href).pathname.split('/').filter(Boolean);
    return parts[1] + '.' + parts[2];
})"""


def _staff(role: str):
    roles_sync()  # the groups and their permissions, as after a migrate
    user = StaffUserFactory(username=role.lower())
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.mark.parametrize("role, expected", [(SUPPORT, SUPPORT_PAGES), (MARKETING, MARKETING_PAGES)])
def test_each_role_sees_exactly_its_pages(login, transactional_db, screenshot, role, expected):
    page = login(_staff(role))
    wanted = {label for label in expected if _registered(label)}

    index_pages = set(page.evaluate(PAGE_LINKS, "#content-main div[class^='app-'] th[scope=row] a"))
    assert index_pages == wanted
    assert "dj-stripe" not in page.content()
    screenshot(page, f"roles-{role.lower()}-front-page")

    page.goto("/admin/customers/customer/")
    assert set(page.evaluate(PAGE_LINKS, "#nav-sidebar th[scope=row] a")) == wanted
    screenshot(page, f"roles-{role.lower()}-sidebar")
    assert page.console_errors == []


def test_a_page_outside_the_role_keeps_the_navigation(login, transactional_db, screenshot):
    page = login(_staff(SUPPORT))
    response = page.goto("/admin/automations/automationrule/")
    assert response.status == 403
    assert "You do not have access to this page" in page.locator("#content").inner_text()
    assert page.locator("#nav-sidebar a[href='/admin/support/ticket/']").count() == 1
    screenshot(page, "forbidden-support")
