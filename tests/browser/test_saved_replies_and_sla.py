"""Marketing writes a saved reply in the admin (a body that fails for some customer is refused with the reason; the
saved one shows as the sample customer reads it); Support reads response times in support hours next to wall clock."""

from datetime import timedelta

from django.utils import timezone

from config.roles import MARKETING, SUPPORT
from support.models import SavedReply, TicketResponse
from tests.browser.test_roles import _staff
from tests.support.factories import TicketFactory


def test_marketing_writes_a_saved_reply(login, transactional_db, screenshot):
    page = login(_staff(MARKETING))
    page.goto("/admin/support/savedreply/add/")
    page.fill("#id_title", "Renewal date")
    page.select_option("#id_category", "billing")
    page.check("#id_public")
    page.fill("#id_body", "Hi {{ customer.first_name }}, your {{ subscription.product_name }} renews soon.")
    page.click("input[name=_save]")
    error = page.locator(".errorlist").inner_text()
    assert "sample customer" in error  # fails for the customer without a subscription
    screenshot(page, "saved-reply-refused")
    page.fill(
        "#id_body",
        "Hi {{ customer.first_name }}!{% if subscription %} Your {{ subscription.product_name }} renews on "
        "{{ subscription.current_period_end|date }}.{% endif %}",
    )
    page.click("input[name=_continue]")
    preview = page.locator("#saved-reply-preview").inner_text()
    assert preview == "Hi Alex! Your Modded Server 8 GB renews on December 1, 2026."
    screenshot(page, "saved-reply-preview")
    page.goto("/admin/support/savedreply/")
    assert "Renewal date" in page.locator("#result_list").inner_text()
    assert "Tickets avoided" in page.locator("#tickets-avoided").inner_text()
    assert SavedReply.objects.get().updated_by == "marketing"
    assert page.console_errors == []


def test_support_reads_response_times_in_support_hours_and_wall_clock(login, transactional_db, screenshot):
    now = timezone.now()
    ticket = TicketFactory(category="setup", status="open")
    for number, kind, support, wall in ((1, "first", 30 * 60, 26 * 3600), (2, "next", 10 * 60, 10 * 60)):
        TicketResponse.objects.create(
            ticket=ticket, number=number, kind=kind, waited_from=now - timedelta(seconds=wall),
            answered_at=now - timedelta(hours=1), responder_name="kim", support_seconds=support, wall_seconds=wall,
        )  # fmt: skip
    page = login(_staff(SUPPORT))
    page.goto("/admin/support/ticket/")
    page.click("text=Response times (SLA)")
    row = page.locator("tr[data-label='Setup']").first
    assert row.locator(".first-support").inner_text() == "30.0"
    assert row.locator(".first-wall").inner_text() == "1560.0"
    assert row.locator(".next-support").inner_text() == "10.0"
    assert page.locator("tr[data-label='kim'] .next-wall").inner_text() == "10.0"
    screenshot(page, "sla-metrics")
    assert page.console_errors == []
