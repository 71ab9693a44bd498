"""The dashboard in a real browser: the owner signs in to it, switches the period and follows a funnel count to the
customers behind it. No script errors and no CSP violations (the charts are inline SVG, nothing from a CDN)."""

from django.utils import timezone

from tests.backoffice.story import STORY_FIGURES, build_story


def test_owner_sees_the_dashboard_switches_period_and_follows_the_funnel(login, superuser, screenshot):
    build_story(now=timezone.now())
    page = login(superuser)

    assert page.url.endswith("/admin/")
    assert page.locator("#tile-new b").inner_text() == str(STORY_FIGURES[30]["new"])
    assert page.locator("#tile-recovered b").inner_text() == "14.99 EUR"
    assert page.locator("#dash-customers svg polyline").count() == 2
    assert "Too pricey for my group a" in page.locator("#dash-churn").inner_text()
    screenshot(page, "dashboard")

    page.click("text=Last 90 days")
    page.wait_for_load_state()
    assert page.url.endswith("?days=90")
    assert page.locator("#tile-new b").inner_text() == str(STORY_FIGURES[90]["new"])
    assert page.locator("#tile-recovered b").inner_text() == "14.99 EUR, 9.99 USD"

    page.click("text=Last 7 days")
    page.wait_for_load_state()
    assert page.locator("#tile-new b").inner_text() == str(STORY_FIGURES[7]["new"])
    screenshot(page, "dashboard-7-days")

    active = page.locator("#dash-funnel tr", has_text="Active").locator("a.funnel-now")
    assert active.inner_text() == "3"
    active.click()
    page.wait_for_load_state()
    assert "/admin/customers/customer/" in page.url and "lifecycle_stage__exact=active" in page.url
    assert page.locator("#result_list tbody tr").count() == 3
    assert page.console_errors == []


def test_owner_follows_the_churned_figure_to_the_customers_who_churned(login, superuser, screenshot):
    build_story(now=timezone.now())
    page = login(superuser)
    page.click("text=Last 30 days")
    page.wait_for_load_state()
    churned = page.locator("#tile-churned b a")
    assert churned.inner_text() == str(STORY_FIGURES[30]["churned"])
    churned.click()
    page.wait_for_load_state()
    heading = page.locator("#list-heading").inner_text()
    assert heading.startswith("Customers who entered Churned (not from Win-back) between")
    assert page.locator("#result_list tbody tr").count() == STORY_FIGURES[30]["churned"]
    assert sorted(page.locator("#result_list tbody th a").all_inner_texts()) == [
        "cat-a@example.com",
        "dan-a@example.com",
    ]
    screenshot(page, "customers-churned-in-30-days")
    assert page.console_errors == []
