"""Discord as unkind as it is: a ticket closed before the activity job read it, a bot token revoked in the developer
portal, the Message Content intent switched off. Driven by signed interactions against the fake Discord."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from customers.models import TimelineEvent
from devtools.fakes.discord import interactions as fake_discord
from support import tasks
from support.models import Ticket, TicketMessage, TicketStatus
from tests.customers.factories import CustomerFactory
from tests.support.conftest import CUSTOMER_DISCORD_ID, STAFF_ID, open_ticket
from tests.support.test_working import _fill_history, _run_on_commit, close

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(discord, send):
    CustomerFactory(discord_user_id=CUSTOMER_DISCORD_ID)
    open_ticket(send)
    return Ticket.objects.get()


def _healthz_integrations() -> tuple[int, dict]:
    response = Client().get("/healthz")
    return response.status_code, response.json()["checks"]["integrations"]


def _let_the_retry_job_pick_it_up(ticket_id):
    ten_minutes_ago = datetime.now(UTC) - timedelta(minutes=10)
    Ticket.objects.filter(pk=ticket_id).update(close_requested_at=ten_minutes_ago, last_error_at=ten_minutes_ago)


# --- first response and message counts ------------------------------------------------------------------------------


def test_a_ticket_closed_before_the_activity_job_ran_keeps_its_counts_and_first_response(ticket, send, discord):
    _fill_history(discord, ticket, count=250)  # the customer writes first; every other message is staff's
    first_staff = next(m for m in discord.channel_messages(ticket.discord_channel_id) if m["author"]["id"] == STAFF_ID)

    close(send, ticket)  # no activity job ran in between

    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED
    assert ticket.message_count == 250
    assert ticket.first_responder_discord_id == STAFF_ID
    assert ticket.first_staff_response_at == datetime.fromisoformat(first_staff["timestamp"])
    assert ticket.last_message_at is not None
    closed = TimelineEvent.objects.get(customer=ticket.customer, kind="support.ticket_closed")
    assert closed.payload["messages"] == 250


def test_messages_already_counted_by_the_activity_job_are_not_counted_again_at_close(ticket, send, discord):
    _fill_history(discord, ticket, count=10)
    assert tasks.tickets_activity_task() == 10
    discord.post_message(ticket.discord_channel_id, author_id=CUSTOMER_DISCORD_ID, content="one more thing")

    close(send, ticket)

    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED and ticket.message_count == 11


# --- a revoked bot token -------------------------------------------------------------------------------------------


def test_a_revoked_token_still_tells_every_customer_and_alerts_staff_until_it_works_again(discord, send, admin_client):
    discord.revoke_bot_token()
    users = ["1700000000000000011", "1700000000000000012", "1700000000000000013"]
    for user_id in users:
        open_ticket(send, user_id=user_id)

    tickets = list(Ticket.objects.order_by("pk"))
    assert [t.status for t in tickets] == [TicketStatus.OPENING] * 3
    # Each customer's "working on it" reply (an interaction webhook: no bot token needed) now says it failed.
    told = [discord.originals.get(t.interaction_token, {}).get("content", "") for t in tickets]
    assert all("could not open your ticket" in text for text in told), told
    bot_calls = [r for r in discord.requests if "/webhooks/" not in r.path]
    assert len(bot_calls) == 3  # one refused call per ticket, nothing repeated

    # Staff see it on the admin's front page and on the ticket list; monitors see it in /healthz.
    assert "Discord refuses the bot token" in admin_client.get("/admin/").content.decode()
    assert "Discord refuses the bot token" in admin_client.get("/admin/support/ticket/").content.decode()
    _, check = _healthz_integrations()
    assert check["ok"] is False  # status "degraded" (HTTP 200 when the rest is healthy: tests/test_healthz.py)
    assert [a["kind"] for a in check["alerts"]] == ["discord_token_rejected"]

    # While the token stays refused, the 2-minute job keeps the alert (one probe call, no more).
    calls = len(discord.requests)
    tasks.tickets_activity_task()
    assert len(discord.requests) == calls + 1
    assert "Discord refuses the bot token" in admin_client.get("/admin/").content.decode()

    # The owner sets a working token: the next run of the job clears the alert.
    discord.revoke_bot_token(False)
    tasks.tickets_activity_task()
    assert "Discord refuses the bot token" not in admin_client.get("/admin/").content.decode()
    assert _healthz_integrations()[1] == {"ok": True, "alerts": []}


def test_a_token_refused_in_the_middle_of_a_close_keeps_the_channel_and_alerts(ticket, send, discord):
    _fill_history(discord, ticket, count=5)
    channel_id = ticket.discord_channel_id
    discord.revoke_bot_token()

    answer = close(send, ticket)

    assert answer["type"] == 4  # the interaction itself is answered inline
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSING and "401" in ticket.last_error
    assert channel_id in discord.channels
    assert _healthz_integrations()[1]["ok"] is False


# --- the Message Content intent switched off -------------------------------------------------------------------------


def test_message_content_intent_off_keeps_the_channel_records_the_failure_and_alerts(
    ticket, send, discord, admin_client
):
    channel_id = ticket.discord_channel_id
    discord.post_message(channel_id, author_id=CUSTOMER_DISCORD_ID, content="The server crashes on start",
                         attachments=[("crash.log", b"Exception: boom", "text/plain")])  # fmt: skip
    discord.post_message(channel_id, author_id=STAFF_ID, content="Fixed: update the mod loader")
    discord.message_content_intent = False  # someone switched it off in the developer portal

    close(send, ticket)

    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSING  # not closed
    assert channel_id in discord.channels  # the only full copy is kept
    assert discord.requests_to("DELETE", rf"/api/v10/channels/{channel_id}") == []
    assert TicketMessage.objects.filter(ticket=ticket).count() == 0 and ticket.transcript_html == ""
    assert "Message Content intent is off" in ticket.last_error
    assert ticket.message_count == 2  # who wrote when is still readable without the text
    page = admin_client.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()
    assert "Message Content intent is off" in page
    assert "Discord returns ticket messages without their text" in admin_client.get("/admin/").content.decode()
    _, check = _healthz_integrations()
    assert check["ok"] is False and [a["kind"] for a in check["alerts"]] == ["discord_message_content_missing"]

    # The intent is turned back on: the retry job closes the ticket with its full transcript, and the alert clears.
    discord.message_content_intent = True
    _let_the_retry_job_pick_it_up(ticket.pk)
    assert _run_on_commit(tasks.tickets_retry_task) == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED and channel_id not in discord.channels
    contents = list(TicketMessage.objects.filter(ticket=ticket, author_is_bot=False).values_list("content", flat=True))
    assert contents == ["The server crashes on start", "Fixed: update the mod loader"]
    assert ticket.message_count == 2
    assert _healthz_integrations()[1] == {"ok": True, "alerts": []}
    assert "without their text" not in admin_client.get("/admin/").content.decode()


def test_a_message_that_mentions_the_bot_does_not_hide_that_the_others_are_empty(ticket, send, discord):
    channel_id = ticket.discord_channel_id
    discord.post_message(channel_id, author_id=CUSTOMER_DISCORD_ID, content="Still broken")
    discord.post_message(channel_id, author_id=STAFF_ID, content=f"<@{fake_discord.APPLICATION_ID}> status?")
    discord.message_content_intent = False

    close(send, ticket)

    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSING and channel_id in discord.channels
    assert TicketMessage.objects.filter(ticket=ticket).count() == 0


def test_a_ticket_nobody_wrote_in_closes_normally_with_the_intent_off(discord, send):
    CustomerFactory(discord_user_id=CUSTOMER_DISCORD_ID)
    open_ticket(send)
    quiet = Ticket.objects.get()
    discord.message_content_intent = False  # only our own messages in the channel: nothing can be missing

    close(send, quiet)

    quiet.refresh_from_db()
    assert quiet.status == TicketStatus.CLOSED
    assert _healthz_integrations()[1]["ok"] is True
