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
from tests.support.conftest import discord_settings_point_at

CUSTOMER = "1700000000000000001"


@pytest.fixture
def discord(settings):
    with FakeDiscord() as server:
        discord_settings_point_at(settings, server)
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


def test_support_inserts_a_saved_reply_sends_the_card_link_and_closes(login, transactional_db, discord, screenshot):
    """The two additions of the page: a saved reply inserted with a plain form and sent with the reply button, and
    the card-update link sent from the billing box (audited, noted in the ticket, never in Discord)."""
    from billing.models import CardUpdateLinkSend
    from support.models import SavedReply
    from support.workspace_models import TicketAuditEntry

    customer = CustomerFactory(
        discord_user_id=CUSTOMER, name="Alex Miner", email="alex@example.com", stripe_customer_id="cus_alex"
    )
    SavedReply.objects.create(title="Card declined", body="Hi {{ customer.first_name }}, your card link is on its way.")
    ticket = open_ticket_as_the_customer()
    discord.post_message(
        ticket.discord_channel_id, author_id=CUSTOMER, username="alexm", content="My card was declined"
    )
    user = StaffUserFactory(first_name="Sam", last_name="Rivera")
    user.groups.add(Group.objects.get(name=SUPPORT))
    page = login(user)

    page.goto(f"/admin/support/ticket/{ticket.pk}/change/")
    assert "My card was declined" in page.locator("#conversation").inner_text()
    page.select_option("#saved-reply-select", label="Card declined")
    page.click("#insert-saved-reply")
    assert page.input_value("#reply-content") == "Hi Alex, your card link is on its way."
    page.dblclick("#send-reply")  # a double click: one reply
    page.wait_for_selector("ul.messagelist")

    page.click("#send-card-update-link")
    assert "sent the card-update link to alex@example.com" in page.locator("ul.messagelist").inner_text()
    assert "sent the card-update link" in page.locator("#conversation").inner_text()  # the internal note
    assert CardUpdateLinkSend.objects.filter(customer=customer).count() == 1
    assert TicketAuditEntry.objects.filter(ticket=ticket, action="card_update_link").count() == 1
    screenshot(page, "ticket-page-saved-reply-and-card-link")

    page.fill("#ticket-actions input[name=reason] >> nth=0", "link sent")
    page.click("#ask-close")
    page.wait_for_selector("#close-request-pending")  # the page reloads after the POST: wait for it, then look
    assert page.locator("#close-request-pending").is_visible()
    request = TicketCloseRequest.objects.get(ticket=ticket)
    handle(
        fake_discord.button_click(
            f"ticket:{ticket.pk}:close-confirm:{request.pk}", user_id=CUSTOMER, channel_id=ticket.discord_channel_id
        )
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED

    contents = [m["content"] for m in discord.deleted_channels[ticket.discord_channel_id]["messages"]]
    assert sum("your card link is on its way" in c for c in contents) == 1
    assert sum("thinks this ticket is solved" in c for c in contents) == 1
    assert not any("card-update link" in c for c in contents)  # the note stays in the admin
