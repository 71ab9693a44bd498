"""A Support user works a ticket from its page in the admin: reads the conversation from Discord, replies (a double
click posts once), and closes it with a close request the customer confirms. The fake Discord shows each message once.
"""

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache

from config.roles import SUPPORT
from devtools.fakes.discord import interactions as fake_discord
from devtools.fakes.discord.server import FakeDiscord
from support.interactions import handle
from support.models import Ticket, TicketStatus
from support.workspace_models import TicketCloseRequest
from tests.customers.factories import CustomerFactory, StaffUserFactory

CUSTOMER = "1700000000000000001"


@pytest.fixture
def discord(settings):
    with FakeDiscord() as server:
        settings.DISCORD_API_URL = server.api_url
        settings.DISCORD_APPLICATION_ID = fake_discord.APPLICATION_ID
        settings.DISCORD_PUBLIC_KEY = fake_discord.PUBLIC_KEY_HEX
        settings.DISCORD_BOT_TOKEN = fake_discord.BOT_TOKEN
        settings.DISCORD_GUILD_ID = fake_discord.GUILD_ID
        settings.DISCORD_STAFF_ROLE_ID = fake_discord.STAFF_ROLE_ID
        settings.DISCORD_SUPPORT_CHANNEL_ID = fake_discord.SUPPORT_CHANNEL_ID
        settings.DISCORD_TICKET_CATEGORY_IDS = list(fake_discord.CATEGORY_IDS)
        settings.DISCORD_SUPPORT_HOURS = ""
        cache.clear()
        yield server


def open_ticket_as_the_customer() -> Ticket:
    """What a customer does in Discord: the panel button, then the form (the tasks run as they are enqueued)."""
    handle(fake_discord.button_click("ticket:open", user_id=CUSTOMER))
    fields = {"category": ["setup"], "subject": "Mods do not load", "description": "Since the update", "email": ""}
    handle(fake_discord.modal_submit("ticket:open-modal", fields, user_id=CUSTOMER, username="alexm"))
    return Ticket.objects.get()


def test_support_reads_replies_and_closes_with_a_close_request(login, transactional_db, discord, screenshot):
    CustomerFactory(discord_user_id=CUSTOMER, name="Alex Miner")
    ticket = open_ticket_as_the_customer()
    discord.post_message(
        ticket.discord_channel_id, author_id=CUSTOMER, username="alexm", content="It says **missing dependency**"
    )
    user = StaffUserFactory(first_name="Sam", last_name="Rivera")
    user.groups.add(Group.objects.get(name=SUPPORT))
    page = login(user)

    page.goto(f"/admin/support/ticket/{ticket.pk}/change/")
    conversation = page.locator("#conversation")
    assert "missing dependency" in conversation.inner_text()
    assert conversation.locator("strong", has_text="missing dependency").count() == 1  # markup rendered
    assert "Alex Miner" in page.locator("#customer-card").inner_text()

    page.fill("#reply textarea", "Please update Fabric API to 0.92")
    page.dblclick("#send-reply")  # a double click: one reply
    page.wait_for_selector("ul.messagelist")
    page.goto(f"/admin/support/ticket/{ticket.pk}/change/")
    assert page.locator("#conversation").inner_text().count("Please update Fabric API") == 1
    screenshot(page, "ticket-page-after-reply")

    page.fill("#ticket-actions input[name=reason] >> nth=0", "works after the update")
    page.click("#ask-close")
    assert "The customer is asked in the channel" in page.locator("ul.messagelist").inner_text()
    assert page.locator("#close-request-pending").is_visible()

    request = TicketCloseRequest.objects.get(ticket=ticket)
    answer = handle(
        fake_discord.button_click(
            f"ticket:{ticket.pk}:close-confirm:{request.pk}", user_id=CUSTOMER, channel_id=ticket.discord_channel_id
        )
    )
    assert answer["type"] == 7
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED

    page.goto(f"/admin/support/ticket/{ticket.pk}/change/")
    assert "Closed" in page.locator("#ticket-actions h2").inner_text()
    assert page.locator("#conversation").inner_text().count("Please update Fabric API") == 1  # from the stored copy
    screenshot(page, "ticket-page-closed")

    posted = discord.deleted_channels[ticket.discord_channel_id]["messages"]
    contents = [m["content"] for m in posted]
    assert sum("Please update Fabric API" in c for c in contents) == 1
    assert sum("thinks this ticket is solved" in c for c in contents) == 1
    assert sum("missing dependency" in c for c in contents) == 1
    assert [m for m in discord.dm_messages(CUSTOMER) if m["attachments"]]  # the transcript by direct message
