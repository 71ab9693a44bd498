"""Working and closing tickets: claim, activity reading, auto-close, close with transcript, feedback."""

from datetime import UTC, datetime, timedelta

import pytest

from customers.models import TimelineEvent
from devtools.fakes.discord import interactions as fake_discord
from support import tasks
from support.models import Ticket, TicketAttachment, TicketMessage, TicketStatus
from tests.customers.factories import CustomerFactory
from tests.support.conftest import CUSTOMER_DISCORD_ID, STAFF_ID, open_ticket

pytestmark = pytest.mark.django_db

STAFF_ROLES = [fake_discord.STAFF_ROLE_ID]


@pytest.fixture
def ticket(discord, send):
    CustomerFactory(discord_user_id=CUSTOMER_DISCORD_ID)
    open_ticket(send)
    return Ticket.objects.get()


def click(send, ticket, action, *, user_id=STAFF_ID, roles=STAFF_ROLES, **kwargs):
    channel_id = ticket.discord_channel_id
    payload = fake_discord.button_click(f"ticket:{ticket.pk}:{action}", user_id=user_id, roles=roles,
                                        channel_id=channel_id, **kwargs)  # fmt: skip
    return send(payload).json()


def close(send, ticket, *, user_id=STAFF_ID, roles=STAFF_ROLES, reason="Solved"):
    modal = click(send, ticket, "close", user_id=user_id, roles=roles)
    assert modal["type"] == 9 and modal["data"]["custom_id"] == f"ticket:{ticket.pk}:close-modal"
    submit = fake_discord.modal_submit(modal["data"]["custom_id"], {"reason": reason}, user_id=user_id, roles=roles)
    return send(submit).json()


def test_claim_shows_the_claimer_and_unclaim_removes_it(ticket, send):
    answer = click(send, ticket, "claim", username="fonzie1984")
    assert answer["type"] == 7  # the opening message is updated in place
    assert f"Claimed by <@{STAFF_ID}>" in answer["data"]["content"]
    assert answer["data"]["components"][0]["components"][0]["custom_id"] == f"ticket:{ticket.pk}:unclaim"
    ticket.refresh_from_db()
    assert (ticket.claimed_by_discord_id, ticket.claimed_by_name) == (STAFF_ID, "fonzie1984")
    answer = click(send, ticket, "unclaim")
    assert "Claimed by" not in answer["data"]["content"]
    ticket.refresh_from_db()
    assert ticket.claimed_by_discord_id == ""


def test_customers_cannot_claim(ticket, send):
    answer = click(send, ticket, "claim", user_id=CUSTOMER_DISCORD_ID, roles=[])
    assert "Only support staff" in answer["data"]["content"]
    ticket.refresh_from_db()
    assert ticket.claimed_by_discord_id == ""


def test_transfer_to_another_staff_member(ticket, send, discord):
    click(send, ticket, "claim")
    picker = click(send, ticket, "transfer")
    assert picker["data"]["components"][0]["components"][0]["type"] == 5  # a user select
    other = "1600000000000000002"
    payload = fake_discord.user_select(
        f"ticket:{ticket.pk}:transfer-to",
        {other: STAFF_ROLES},
        names={other: "picklecord"},
        user_id=STAFF_ID,
        roles=STAFF_ROLES,
    )
    answer = send(payload).json()
    assert f"transferred to <@{other}>" in answer["data"]["content"]
    ticket.refresh_from_db()
    assert ticket.claimed_by_name == "picklecord"
    opening = discord.channel_messages(ticket.discord_channel_id)[0]
    assert f"Claimed by <@{other}>" in opening["content"]  # refreshed by the task


@pytest.mark.parametrize(
    "picked_roles", [[], ["1500000000000000099"], None], ids=["member-without-roles", "other-role", "not-a-member"]
)
def test_transfer_to_someone_outside_the_staff_role_is_refused(ticket, send, discord, picked_roles):
    """Only the staff role sees ticket channels: a transfer to anyone else would leave the ticket with a claimer who
    cannot open it. The staff member who tried is told why, privately, and nothing changes."""
    click(send, ticket, "claim")
    outsider = "1700000000000000777"
    payload = fake_discord.user_select(
        f"ticket:{ticket.pk}:transfer-to",
        {outsider: picked_roles},
        names={outsider: "randomgamer"},
        user_id=STAFF_ID,
        roles=STAFF_ROLES,
    )
    answer = send(payload).json()
    assert answer["type"] == 4 and answer["data"]["flags"] == 64  # ephemeral: only the staff member sees it
    assert "randomgamer is not in the support team" in answer["data"]["content"]
    ticket.refresh_from_db()
    assert ticket.claimed_by_discord_id == STAFF_ID
    opening = discord.channel_messages(ticket.discord_channel_id)[0]
    assert f"<@{outsider}>" not in opening["content"]


def test_first_staff_response_is_measured_from_the_channel(ticket, discord):
    opened = ticket.opened_at
    discord.post_message(ticket.discord_channel_id, author_id=CUSTOMER_DISCORD_ID, content="any news?",
                         at=opened + timedelta(minutes=1))  # fmt: skip
    staff_reply = discord.post_message(ticket.discord_channel_id, author_id=STAFF_ID, username="cxtides",
                                       content="On it", at=opened + timedelta(minutes=7))  # fmt: skip
    assert tasks.tickets_activity_task() == 2
    ticket.refresh_from_db()
    assert ticket.message_count == 2
    assert ticket.first_responder_name == "cxtides"
    assert abs((ticket.first_staff_response_at - opened) - timedelta(minutes=7)) < timedelta(seconds=1)
    # The next run reads only what is new (after= the last seen id), and counts nothing twice.
    discord.post_message(ticket.discord_channel_id, author_id=CUSTOMER_DISCORD_ID, content="thanks",
                         at=opened + timedelta(minutes=9))  # fmt: skip
    assert tasks.tickets_activity_task() == 1
    ticket.refresh_from_db()
    assert ticket.message_count == 3
    reads = discord.requests_to("GET", r"/api/v10/channels/\d+/messages")
    assert reads[-1].query["after"] == [staff_reply["id"]]


def test_activity_job_without_open_tickets_needs_no_discord_credentials(db, settings):
    # A local run (bin/run) has no Discord token and no tickets: the every-2-minutes job must not fail there.
    settings.DISCORD_BOT_TOKEN = ""
    assert tasks.tickets_activity_task() == 0


def test_auto_close_works_for_a_ticket_with_no_messages(ticket, discord, settings):
    settings.DISCORD_AUTOCLOSE_WARN_HOURS = 48
    settings.DISCORD_AUTOCLOSE_GRACE_HOURS = 24
    channel_id = ticket.discord_channel_id
    assert tasks.tickets_autoclose_task() == {"warned": 0, "closing": 0}  # fresh: nothing to do
    Ticket.objects.filter(pk=ticket.pk).update(opened_at=datetime.now(UTC) - timedelta(hours=49))
    assert tasks.tickets_autoclose_task() == {"warned": 1, "closing": 0}
    warning = discord.channel_messages(channel_id)[-1]
    assert "quiet for a while" in warning["content"]
    assert tasks.tickets_autoclose_task() == {"warned": 0, "closing": 0}  # warned once, grace not over
    Ticket.objects.filter(pk=ticket.pk).update(inactivity_warned_at=datetime.now(UTC) - timedelta(hours=25))
    result = _run_on_commit(tasks.tickets_autoclose_task)
    assert result == {"warned": 0, "closing": 1}
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED and ticket.closed_by_name == "auto-close"
    assert channel_id not in discord.channels


def test_a_reply_after_the_warning_keeps_the_ticket_open(ticket, discord):
    Ticket.objects.filter(pk=ticket.pk).update(opened_at=datetime.now(UTC) - timedelta(hours=49))
    tasks.tickets_autoclose_task()
    Ticket.objects.filter(pk=ticket.pk).update(inactivity_warned_at=datetime.now(UTC) - timedelta(hours=25))
    discord.post_message(ticket.discord_channel_id, author_id=CUSTOMER_DISCORD_ID, content="still broken")
    assert _run_on_commit(tasks.tickets_autoclose_task) == {"warned": 0, "closing": 0}
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN and ticket.message_count == 1


def _run_on_commit(func):
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        return func()


def _fill_history(discord, ticket, count=250):
    start = datetime.now(UTC) - timedelta(hours=2)
    for i in range(count):
        author = STAFF_ID if i % 2 else CUSTOMER_DISCORD_ID
        attachments = [("crash.log", b"Exception at line %d" % i, "text/plain")] if i in (3, 120) else None
        if i == 200:
            attachments = [("screen.png", b"\x89PNG fake image", "image/png"), ("huge.zip", b"z" * 5000)]
        discord.post_message(ticket.discord_channel_id, author_id=author, content=f"message {i}",
                             attachments=attachments, at=start + timedelta(seconds=i))  # fmt: skip


def test_close_saves_transcript_and_attachments_before_deleting_the_channel(
    ticket, send, discord, settings, admin_client
):
    settings.DISCORD_ATTACHMENT_MAX_BYTES = 1000
    _fill_history(discord, ticket)
    channel_id = ticket.discord_channel_id
    answer = close(send, ticket, reason="Fixed the config")
    assert answer["type"] == 4 and "closed this ticket" in answer["data"]["content"]

    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED
    assert (ticket.closed_by_discord_id, ticket.close_reason) == (STAFF_ID, "Fixed the config")
    assert TicketMessage.objects.filter(ticket=ticket).count() == 251  # 250 + the opening message
    saved = {a.filename: a for a in TicketAttachment.objects.filter(message__ticket=ticket)}
    assert bytes(saved["screen.png"].data) == b"\x89PNG fake image"
    assert saved["huge.zip"].too_large and saved["huge.zip"].data is None and saved["huge.zip"].size == 5000
    assert TicketAttachment.objects.filter(message__ticket=ticket, filename="crash.log").count() == 2

    # Order at Discord: the history and every kept attachment were read before the channel was deleted.
    order = [(r.method, r.path) for r in discord.requests]
    delete_at = order.index(("DELETE", f"/api/v10/channels/{channel_id}"))
    cdn_reads = [i for i, (method, path) in enumerate(order) if path.startswith("/attachments/")]
    assert len(cdn_reads) == 3 and max(cdn_reads) < delete_at
    history_reads = [i for i, (m, p) in enumerate(order) if m == "GET" and p.endswith(f"{channel_id}/messages")]
    assert len(history_reads) >= 3 and max(history_reads) < delete_at
    assert channel_id not in discord.channels

    assert TimelineEvent.objects.filter(customer=ticket.customer, kind="support.ticket_closed").count() == 1
    # Staff open the HTML transcript from the admin, attachments included.
    page = admin_client.get(f"/admin/support/ticket/{ticket.pk}/transcript/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "message 0" in html and "message 249" in html and "huge.zip" in html and "not kept" in html
    assert (
        "script-src" not in page["Content-Security-Policy"] and "default-src 'none'" in page["Content-Security-Policy"]
    )
    image = saved["screen.png"]
    file = admin_client.get(f"/admin/support/ticket/{ticket.pk}/attachment/{image.discord_attachment_id}/")
    assert file.content == b"\x89PNG fake image" and file["Content-Type"] == "image/png"


def test_customer_can_close_their_own_ticket_but_not_someone_elses(ticket, send):
    stranger = click(send, ticket, "close", user_id="1800000000000000001", roles=[])
    assert "Only staff or the customer" in stranger["data"]["content"]
    assert close(send, ticket, user_id=CUSTOMER_DISCORD_ID, roles=[])["type"] == 4
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED and ticket.closed_by_discord_id == CUSTOMER_DISCORD_ID


def test_a_429_during_close_is_waited_out(ticket, send, discord):
    _fill_history(discord, ticket, count=150)
    discord.fail_429(retry_after=0.2)
    close(send, ticket)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED
    assert TicketMessage.objects.filter(ticket=ticket).count() == 151


def test_bucket_limits_during_close_cause_no_429(ticket, send, discord):
    _fill_history(discord, ticket, count=320)
    discord.limit_buckets(limit=2, per=0.2)
    close(send, ticket)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED and discord.bucket_429s == 0


def test_a_500_during_close_leaves_the_channel_and_the_ticket_closing_then_retries(ticket, send, discord):
    _fill_history(discord, ticket, count=150)
    channel_id = ticket.discord_channel_id
    discord.fail_next(500, times=10)  # more than the client's retries of an idempotent read
    close(send, ticket)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSING
    assert "500" in ticket.last_error and ticket.close_attempts == 1
    assert channel_id in discord.channels  # nothing deleted while the transcript is not safe
    assert discord.requests_to("DELETE", rf"/api/v10/channels/{channel_id}") == []

    discord.reset()
    Ticket.objects.filter(pk=ticket.pk).update(
        close_requested_at=datetime.now(UTC) - timedelta(minutes=10),
        last_error_at=datetime.now(UTC) - timedelta(minutes=10),
    )
    assert _run_on_commit(tasks.tickets_retry_task) == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED and channel_id not in discord.channels
    assert TicketMessage.objects.filter(ticket=ticket).count() == 151


def test_a_failed_delete_after_the_transcript_is_retried_without_duplicates(ticket, send, discord):
    _fill_history(discord, ticket, count=20)
    channel_id = ticket.discord_channel_id
    original = discord.channel_delete

    def delete_fails(request):
        return discord._error(500, 0, "Internal Server Error")

    discord._routes = [(m, p, delete_fails if h == original else h) for m, p, h in discord._routes]
    close(send, ticket)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSING and channel_id in discord.channels
    assert TicketMessage.objects.filter(ticket=ticket).count() == 21  # the transcript is already safe
    discord._routes = [(m, p, original if h == delete_fails else h) for m, p, h in discord._routes]
    assert tasks.ticket_close_task(ticket.pk) == "closed"
    assert TicketMessage.objects.filter(ticket=ticket).count() == 21


def test_feedback_after_close(ticket, send, discord):
    close(send, ticket)
    dm = [m for m in discord.dm_messages(CUSTOMER_DISCORD_ID) if not m["attachments"]]  # besides the transcript
    assert len(dm) == 1 and "How did we do?" in dm[0]["content"]
    four = dm[0]["components"][0]["components"][3]["custom_id"]
    modal = send(fake_discord.button_click(four, user_id=CUSTOMER_DISCORD_ID)).json()
    assert modal["type"] == 9
    stranger = send(fake_discord.modal_submit(modal["data"]["custom_id"], {"comment": "x"}, user_id="1")).json()
    assert "Only the customer" in stranger["data"]["content"]
    answer = send(
        fake_discord.modal_submit(
            modal["data"]["custom_id"], {"comment": "Quick and kind"}, user_id=CUSTOMER_DISCORD_ID
        )
    ).json()
    assert answer["type"] == 7 and answer["data"]["components"] == []
    ticket.refresh_from_db()
    assert (ticket.rating, ticket.rating_comment) == (4, "Quick and kind")


def test_a_bad_bot_token_stops_and_is_shown_on_the_ticket(discord, send, settings):
    settings.DISCORD_BOT_TOKEN = "revoked"
    open_ticket(send)
    ticket = Ticket.objects.get()
    assert ticket.status == TicketStatus.OPENING
    assert "401" in ticket.last_error and "revoked" not in ticket.last_error
    api_calls = [r for r in discord.requests if not r.path.startswith("/api/v10/webhooks/")]
    assert len(api_calls) == 1  # no retries of an invalid request
