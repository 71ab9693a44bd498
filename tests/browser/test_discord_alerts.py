"""A Support user signing in while Discord refuses the bot token sees it at once: in red at the top of the front
page and above the ticket list; the notice is gone once the token works again."""

from config.roles import SUPPORT
from integrations import alerts
from tests.browser.test_roles import _staff


def test_support_sees_a_refused_discord_token_on_the_front_page_and_the_ticket_list(
    login, transactional_db, screenshot
):
    alerts.discord_token_rejected(error=None)  # what the Discord client records on a 401 to the bot token
    page = login(_staff(SUPPORT))

    notice = page.locator("p.mr-alert")
    assert notice.count() == 1 and notice.is_visible()
    assert "Discord refuses the bot token" in notice.inner_text()
    assert "Customers who open a ticket are told it failed" in notice.inner_text()
    screenshot(page, "discord-token-alert-front-page")

    page.goto("/admin/support/ticket/")
    assert "Discord refuses the bot token" in page.locator("ul.messagelist").inner_text()
    screenshot(page, "discord-token-alert-ticket-list")

    alerts.discord_token_accepted()  # the first bot call that Discord accepts again
    page.goto("/admin/")
    assert page.locator("p.mr-alert").count() == 0
    assert page.console_errors == []
