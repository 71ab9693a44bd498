"""The ticket page in the admin, as Support uses it: the conversation read from Discord, replies that reach the channel
exactly once, internal notes that never do, and the buttons."""

import uuid

import pytest
from django.contrib.auth.models import Group

from support.models import Ticket, TicketStatus
from support.workspace_models import PostStatus, TicketAuditEntry, TicketPost
from tests.customers.factories import CustomerFactory, StaffUserFactory
from tests.support.conftest import CUSTOMER_DISCORD_ID, act, open_ticket, page_url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]

MESSAGES = r"/api/v10/channels/\d+/messages"


@pytest.fixture
def ticket(discord, send):
    CustomerFactory(discord_user_id=CUSTOMER_DISCORD_ID, name="Alex Miner", vip_status=True)
    open_ticket(send, subject="Mods do not load")
    return Ticket.objects.get()


def history_reads(discord) -> int:
    return len(discord.requests_to("GET", MESSAGES))


def test_support_reads_the_conversation_as_the_customer_sees_it(ticket, staff, discord):
    discord.post_message(
        ticket.discord_channel_id,
        author_id=CUSTOMER_DISCORD_ID,
        username="alexm",
        content="**Setup** is stuck <t:1796630400:F> ||my password||",
        attachments=[("crash.png", b"\x89PNG fake", "image/png"), ("latest.log", b"boom")],
    )
    page = staff.get(page_url(ticket))
    html = page.content.decode()
    assert page.status_code == 200
    assert "<strong>Setup</strong> is stuck" in html  # markdown rendered, not raw
    assert "<t:1796630400:F>" not in html and "2026" in html  # the timestamp as a date
    assert 'class="spoiler"' in html
    assert "crash.png" in html and "latest.log" in html and '<img class="attachment"' in html
    assert "@Staff" in html  # the opening message's role mention, by name
    # The CRM card beside it.
    card = html[html.index('id="customer-card"') :]
    assert "Alex Miner" in card and "VIP" in card and "Stage" in card and "no subscription" in card


def test_one_read_then_the_cache_then_refresh_reads_again(ticket, staff, discord):
    for n in range(150):  # two pages of history
        discord.post_message(ticket.discord_channel_id, author_id=CUSTOMER_DISCORD_ID, content=f"line {n}")
    before = history_reads(discord)
    first = staff.get(page_url(ticket)).content.decode()
    assert history_reads(discord) - before == 2  # 151 messages: 100 + 51
    assert "line 0" in first and "line 149" in first
    staff.get(page_url(ticket))
    assert history_reads(discord) - before == 2  # cached
    staff.get(page_url(ticket) + "?refresh=1")
    assert history_reads(discord) - before == 4


def test_discord_down_shows_the_stored_messages_with_a_notice(ticket, staff, discord):
    discord.fail_next(503, times=4)
    page = staff.get(page_url(ticket))
    assert page.status_code == 200
    assert "Discord could not be read just now" in page.content.decode()


def test_a_double_submitted_reply_reaches_the_channel_once(ticket, staff, discord, run_on_commit):
    form = {"content": "Try removing **OptiFine**", "kind": "reply", "token": uuid.uuid4().hex}
    first = act(staff, ticket, "post", form, run_on_commit=run_on_commit)
    second = act(staff, ticket, "post", form, run_on_commit=run_on_commit)
    assert first.status_code == second.status_code == 302
    sent = [m for m in discord.channel_messages(ticket.discord_channel_id) if "OptiFine" in m["content"]]
    assert [m["content"] for m in sent] == ["**Sam Rivera (Support):** Try removing **OptiFine**"]
    post = TicketPost.objects.get()
    assert post.status == PostStatus.SENT and post.discord_message_id == sent[0]["id"]
    html = staff.get(page_url(ticket) + "?refresh=1").content.decode()
    assert html.count("Try removing") == 1 and "sent from the admin by Sam Rivera" in html
    ticket.refresh_from_db()
    assert ticket.first_responder_name == "Sam Rivera" and ticket.first_staff_response_at


@pytest.mark.parametrize("fault", ["lost answer", "5xx"])
def test_a_reply_whose_answer_was_lost_is_retried_under_its_nonce(ticket, staff, discord, run_on_commit, fault):
    if fault == "lost answer":
        discord.lose_answer_next("POST", MESSAGES)  # Discord posts it, the answer never arrives
    else:
        discord.lose_answer_next("POST", MESSAGES, status=502)  # a gateway's 5xx after Discord posted it
    form = {"content": "Restart the server please", "kind": "reply", "token": uuid.uuid4().hex}
    act(staff, ticket, "post", form, run_on_commit=run_on_commit)
    sent = [m for m in discord.channel_messages(ticket.discord_channel_id) if "Restart" in m["content"]]
    assert len(sent) == 1
    posts = discord.requests_to("POST", MESSAGES)[-2:]
    assert [p.json()["nonce"] for p in posts] == [f"ticket-post-{TicketPost.objects.get().pk}"] * 2
    assert all(p.json()["enforce_nonce"] is True for p in posts)
    assert TicketPost.objects.get().status == PostStatus.SENT


def test_a_reply_that_timed_out_every_time_is_found_by_the_retry_job(ticket, staff, discord, run_on_commit):
    from datetime import timedelta

    from django.utils import timezone

    from support import workspace_discord

    discord.lose_answer_next("POST", MESSAGES, times=4)  # every attempt of the first run
    form = {"content": "Your server is back", "kind": "reply", "token": uuid.uuid4().hex}
    act(staff, ticket, "post", form, run_on_commit=run_on_commit)
    post = TicketPost.objects.get()
    assert post.status == PostStatus.PENDING and post.attempts == 1 and post.last_error
    assert workspace_discord.posts_retry_run(now=timezone.now() + timedelta(minutes=10)) == 1
    sent = [m for m in discord.channel_messages(ticket.discord_channel_id) if "back" in m["content"]]
    assert len(sent) == 1
    post.refresh_from_db()
    assert post.status == PostStatus.SENT and post.discord_message_id == sent[0]["id"]


def test_an_internal_note_never_reaches_discord(ticket, staff, discord, run_on_commit):
    posts_before = len(discord.requests_to("POST", MESSAGES))
    form = {"content": "Customer is on the old plan, check billing", "kind": "note", "token": uuid.uuid4().hex}
    act(staff, ticket, "post", form, run_on_commit=run_on_commit)
    assert len(discord.requests_to("POST", MESSAGES)) == posts_before
    assert all("old plan" not in m["content"] for m in discord.channel_messages(ticket.discord_channel_id))
    html = staff.get(page_url(ticket)).content.decode()
    assert "Customer is on the old plan" in html and "internal note: not sent to Discord" in html


def test_bad_reply_input_is_refused_with_400(ticket, staff, discord, run_on_commit):
    for form in (
        {"content": "hi", "kind": "reply", "token": "not-a-token"},
        {"content": "", "kind": "reply", "token": uuid.uuid4().hex},
        {"content": "hi", "kind": "shout", "token": uuid.uuid4().hex},
        {"content": "x" * 1801, "kind": "reply", "token": uuid.uuid4().hex},
    ):
        assert act(staff, ticket, "post", form, run_on_commit=run_on_commit).status_code == 400
    assert not TicketPost.objects.exists()
    assert staff.get(f"/admin/support/ticket/{ticket.pk}/act/claim/").status_code == 405
    assert act(staff, ticket, "explode", run_on_commit=run_on_commit).status_code == 404


def test_claim_unclaim_and_transfer_from_the_page_are_audited(ticket, staff, discord, run_on_commit):
    colleague = StaffUserFactory(first_name="Kim", last_name="Lee")
    colleague.groups.add(Group.objects.get(name="Support"))
    outsider = StaffUserFactory(first_name="Mark", last_name="Eting")
    outsider.groups.add(Group.objects.get(name="Marketing"))

    act(staff, ticket, "claim", run_on_commit=run_on_commit)
    ticket.refresh_from_db()
    assert ticket.claimed_by_name == "Sam Rivera"
    opening = next(
        m for m in discord.channel_messages(ticket.discord_channel_id) if m["id"] == ticket.opening_message_id
    )
    assert "Claimed by Sam Rivera" in opening["content"]  # the opening message in Discord shows it too
    assert opening["components"][0]["components"][0]["custom_id"] == f"ticket:{ticket.pk}:unclaim"

    assert act(staff, ticket, "transfer", {"to": outsider.pk}, run_on_commit=run_on_commit).status_code == 400
    act(staff, ticket, "transfer", {"to": colleague.pk}, run_on_commit=run_on_commit)
    ticket.refresh_from_db()
    assert ticket.claimed_by_name == "Kim Lee"
    act(staff, ticket, "unclaim", run_on_commit=run_on_commit)
    ticket.refresh_from_db()
    assert ticket.claimed_by_name == ""
    summaries = list(TicketAuditEntry.objects.values_list("summary", flat=True))
    assert summaries == [
        f"Sam Rivera claimed #{ticket.pk}",
        f"Sam Rivera transferred #{ticket.pk} to Kim Lee",
        f"Sam Rivera unclaimed #{ticket.pk} (was Kim Lee)",
    ]
    timeline = ticket.customer.timeline_events.filter(kind__startswith="support.ticket_").values_list("kind", flat=True)
    assert {"support.ticket_claim", "support.ticket_transfer", "support.ticket_unclaim"} <= set(timeline)
    assert "Sam Rivera transferred" in staff.get(page_url(ticket)).content.decode()


def test_close_with_a_reason_then_reopen(ticket, staff, discord, run_on_commit):
    assert act(staff, ticket, "close", {"reason": ""}, run_on_commit=run_on_commit).status_code == 400
    act(staff, ticket, "close", {"reason": "Fixed by reinstalling"}, run_on_commit=run_on_commit)
    ticket.refresh_from_db()
    first_channel = ticket.discord_channel_id
    assert ticket.status == TicketStatus.CLOSED and ticket.close_reason == "Fixed by reinstalling"
    assert first_channel not in discord.channels  # transcript saved, channel deleted
    html = staff.get(page_url(ticket)).content.decode()
    assert "Mods do not load" in html and "Reopen in a new channel" in html
    act(staff, ticket, "reopen", run_on_commit=run_on_commit)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN and ticket.discord_channel_id != first_channel
    assert [e.action for e in TicketAuditEntry.objects.all()] == ["close", "reopen"]


def test_buttons_need_the_change_permission(ticket, client, marketing_user, run_on_commit):
    client.force_login(marketing_user)
    assert act(client, ticket, "claim", run_on_commit=run_on_commit).status_code == 403
    ticket.refresh_from_db()
    assert ticket.claimed_by_name == ""


def test_a_button_that_no_longer_applies_changes_nothing(ticket, staff, run_on_commit):
    act(staff, ticket, "close", {"reason": "done"}, run_on_commit=run_on_commit)
    response = act(staff, ticket, "claim", run_on_commit=run_on_commit)
    assert response.status_code == 302
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("Nothing was done" in m for m in messages)
    assert TicketAuditEntry.objects.filter(action="claim").count() == 0
