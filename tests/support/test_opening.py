"""Opening tickets from Discord, through signed interactions, against the fake Discord."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection
from django.test import Client

from customers.models import TimelineEvent
from devtools.fakes.discord import interactions as fake_discord
from support.models import Ticket, TicketStatus
from tests.customers.factories import CustomerFactory
from tests.support.conftest import CUSTOMER_DISCORD_ID, open_ticket
from tests.support.factories import TicketFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("category", ["purchase", "setup", "technical", "billing", "other"])
def test_open_a_ticket_in_each_category(discord, send, category):
    customer = CustomerFactory(discord_user_id=CUSTOMER_DISCORD_ID, vip_status=True)
    response = open_ticket(send, category=category, subject="Need help", description="Please help")
    assert response.json() == {"type": 5, "data": {"flags": 64}}  # deferred, ephemeral

    ticket = Ticket.objects.get()
    assert (ticket.category, ticket.status, ticket.customer, ticket.priority) == (category, "open", customer, "high")
    channel = discord.channels[ticket.discord_channel_id]
    assert channel["parent_id"] == fake_discord.CATEGORY_IDS[0]
    overwrites = {o["id"]: o for o in channel["permission_overwrites"]}
    assert overwrites[fake_discord.GUILD_ID]["deny"] == str(1 << 10)  # @everyone cannot see it
    for member in (CUSTOMER_DISCORD_ID, fake_discord.STAFF_ROLE_ID, fake_discord.APPLICATION_ID):
        assert overwrites[member]["allow"] == "117760"

    opening = discord.channel_messages(ticket.discord_channel_id)[0]
    assert f"<@&{fake_discord.STAFF_ROLE_ID}>" in opening["content"]
    assert "VIP" in opening["content"] and "Plan: no subscription" in opening["content"]
    buttons = [b["custom_id"] for b in opening["components"][0]["components"]]
    assert buttons == [f"ticket:{ticket.pk}:claim", f"ticket:{ticket.pk}:transfer", f"ticket:{ticket.pk}:close"]
    token = Ticket.objects.get().interaction_token
    assert discord.originals[token]["content"] == f"Your ticket is open: <#{ticket.discord_channel_id}>"
    assert TimelineEvent.objects.filter(customer=customer, kind="support.ticket_opened").count() == 1


def test_other_is_triaged_with_a_recorded_suggestion_that_staff_see(discord, send):
    open_ticket(send, category="other", subject="Refund please", description="I was charged twice, see invoice")
    ticket = Ticket.objects.get()
    assert ticket.category == "other"  # the customer's choice is kept
    assert ticket.suggested_category == "billing"
    assert "refund" in ticket.triage_reason and "charged" in ticket.triage_reason
    opening = discord.channel_messages(ticket.discord_channel_id)[0]
    assert "Triage suggests **Billing**" in opening["content"]


def test_double_click_opens_one_ticket(discord, send):
    first = open_ticket(send, category="setup")
    second = open_ticket(send, category="setup")
    assert first.json()["type"] == 5
    assert "already have an open setup ticket" in second.json()["data"]["content"]
    assert Ticket.objects.count() == 1 and len(discord.ticket_channels()) == 1


def test_the_database_refuses_a_second_active_ticket_per_user_and_category(db):
    Ticket.objects.create(discord_user_id="1", category="setup")
    with pytest.raises(IntegrityError):
        Ticket.objects.create(discord_user_id="1", category="setup")


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submits_make_one_ticket(discord):
    """Two modal submits at the same moment (two clicks): the unique constraint lets exactly one through."""
    import json

    from devtools.fakes.discord.interactions import sign_interaction

    barrier = threading.Barrier(2)
    answers = []

    def submit():
        fields = {"category": ["billing"], "subject": "Invoice", "description": "wrong", "email": ""}
        body = json.dumps(fake_discord.modal_submit("ticket:open-modal", fields, user_id="1999")).encode()
        meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in sign_interaction(body).items()}
        barrier.wait()
        try:
            answers.append(
                Client().post("/api/discord/interactions", data=body, content_type="application/json", **meta)
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.json()["type"] for a in answers) == [4, 5]
    assert Ticket.objects.filter(discord_user_id="1999").count() == 1


def test_a_typed_email_links_nothing_until_the_customer_confirms_it(discord, send, mailoutbox):
    """A typed email is not proof (tests/support/test_discord_identity.py has the whole story): the Discord id is not
    stored, the ticket has no customer, and the address on file is asked to confirm."""
    customer = CustomerFactory(email="gamer@example.com")
    open_ticket(send, email="Gamer@Example.com")
    customer.refresh_from_db()
    assert customer.discord_user_id == ""
    ticket = Ticket.objects.get()
    assert (ticket.customer, ticket.contact_email) == (None, "Gamer@Example.com")
    assert not TimelineEvent.objects.filter(customer=customer, kind="discord.linked").exists()
    # The email was typed, not proven: the channel (which the user reads) shows no account details.
    opening = discord.channel_messages(ticket.discord_channel_id)[0]["content"]
    assert "not linked to the CRM" in opening and "Plan:" not in opening
    assert [m.to for m in mailoutbox] == [["gamer@example.com"]]


def test_unknown_user_without_a_matching_email_still_gets_a_ticket(discord, send):
    open_ticket(send, email="nobody@example.com")
    ticket = Ticket.objects.get()
    assert ticket.customer is None and ticket.status == "open"
    assert "not linked to the CRM" in discord.channel_messages(ticket.discord_channel_id)[0]["content"]


def test_full_category_overflows_into_the_next(discord, send):
    discord.fill_category(fake_discord.CATEGORY_IDS[0])
    open_ticket(send)
    ticket = Ticket.objects.get()
    assert discord.channels[ticket.discord_channel_id]["parent_id"] == fake_discord.CATEGORY_IDS[1]


def test_every_category_full_opens_nothing_and_says_so(discord, send):
    for category_id in fake_discord.CATEGORY_IDS:
        discord.fill_category(category_id)
    open_ticket(send)
    ticket = Ticket.objects.get()
    assert ticket.status == TicketStatus.NOT_OPENED and ticket.discord_channel_id == ""
    assert discord.ticket_channels() == []
    assert "all our ticket channels are in use" in discord.originals[ticket.interaction_token]["content"]
    # The slot is free again: once there is room, the same customer can open the ticket.
    discord.channels = {k: v for k, v in discord.channels.items() if v.get("parent_id") != fake_discord.CATEGORY_IDS[1]}
    assert open_ticket(send).json()["type"] == 5


def test_full_guild_opens_nothing(discord, send):
    discord.guild_limit = len(discord.channels)
    open_ticket(send)
    assert Ticket.objects.get().status == TicketStatus.NOT_OPENED


def test_a_lost_answer_to_channel_create_does_not_make_a_second_channel(discord, settings):
    """A create reached Discord but its answer was lost: the retried task finds the channel by name."""
    from support.tasks import ticket_open_task

    ticket = TicketFactory(discord_user_id=CUSTOMER_DISCORD_ID, category="setup", subject="Mods")
    channel_id = "1999999999999999999"
    discord.channels[channel_id] = {
        "id": channel_id, "type": 0, "name": f"ticket-{ticket.pk}", "guild_id": fake_discord.GUILD_ID,
        "parent_id": fake_discord.CATEGORY_IDS[0], "permission_overwrites": [],
    }  # fmt: skip
    discord.messages[channel_id] = []
    assert ticket_open_task(ticket.pk) == "opened"
    ticket.refresh_from_db()
    assert (ticket.status, ticket.discord_channel_id) == ("open", channel_id)
    assert discord.requests_to("POST", r"/api/v10/guilds/\d+/channels") == []
    assert len(discord.channel_messages(channel_id)) == 1  # the opening message


def test_a_discord_outage_while_opening_is_retried_by_the_job(discord, send):
    from support.tasks import tickets_retry_task

    discord.fail_next(503, times=20)
    open_ticket(send)
    ticket = Ticket.objects.get()
    assert ticket.status == TicketStatus.OPENING and "503" in ticket.last_error
    discord.reset()
    Ticket.objects.filter(pk=ticket.pk).update(
        interaction_at=datetime.now(UTC) - timedelta(minutes=6), last_error_at=datetime.now(UTC) - timedelta(minutes=6)
    )
    assert tickets_retry_task() == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN and ticket.discord_channel_id in discord.channels


def test_an_opening_that_fails_for_hours_frees_the_slot(discord, send):
    from support.tasks import tickets_retry_task

    discord.fail_next(503, times=20)
    open_ticket(send, category="setup")
    Ticket.objects.update(interaction_at=datetime.now(UTC) - timedelta(hours=7))
    tickets_retry_task()
    ticket = Ticket.objects.get()
    assert ticket.status == TicketStatus.NOT_OPENED and "503" in ticket.last_error
    discord.reset()
    assert open_ticket(send, category="setup").json()["type"] == 5


def test_max_open_tickets_per_user(discord, send, settings):
    settings.DISCORD_MAX_OPEN_TICKETS_PER_USER = 2
    open_ticket(send, category="setup")
    open_ticket(send, category="billing")
    refused = send(fake_discord.button_click("ticket:open", user_id=CUSTOMER_DISCORD_ID))
    assert refused.json()["type"] == 4 and "2 open tickets" in refused.json()["data"]["content"]
    assert Ticket.objects.count() == 2


def test_cooldown_after_a_close(discord, send, settings):
    settings.DISCORD_REOPEN_COOLDOWN_MINUTES = 10
    closed = TicketFactory(
        discord_user_id=CUSTOMER_DISCORD_ID, category="setup", status="closed", closed_at=datetime.now(UTC)
    )
    refused = send(fake_discord.button_click("ticket:open", user_id=CUSTOMER_DISCORD_ID))
    assert "you can open a new one" in refused.json()["data"]["content"]
    Ticket.objects.filter(pk=closed.pk).update(closed_at=datetime.now(UTC) - timedelta(minutes=11))
    assert open_ticket(send, category="setup").json()["type"] == 5


def test_outside_support_hours_the_ticket_opens_with_a_notice(discord, send, settings):
    settings.DISCORD_SUPPORT_HOURS = "mon 00:00-00:01"
    settings.DISCORD_SUPPORT_TIMEZONE = "UTC"
    open_ticket(send)
    ticket = Ticket.objects.get()
    assert ticket.status == "open" and ticket.outside_support_hours
    texts = [m["content"] for m in discord.channel_messages(ticket.discord_channel_id)]
    assert any("Our team is off right now and back" in t for t in texts)
    assert "outside support hours" in discord.originals[ticket.interaction_token]["content"]


def test_panel_is_posted_then_updated_in_place(discord, settings):
    from django.core.management import call_command

    discord.channels[fake_discord.SUPPORT_CHANNEL_ID] = {
        "id": fake_discord.SUPPORT_CHANNEL_ID,
        "type": 0,
        "guild_id": fake_discord.GUILD_ID,
        "name": "support",
    }
    discord.messages[fake_discord.SUPPORT_CHANNEL_ID] = []
    call_command("support_panel")
    call_command("support_panel")
    panel = discord.channel_messages(fake_discord.SUPPORT_CHANNEL_ID)
    assert len(panel) == 1
    assert panel[0]["components"][0]["components"][0]["custom_id"] == "ticket:open"
    assert len(discord.requests_to("PATCH", r"/api/v10/channels/\d+/messages/\d+")) == 1
