"""Close requests (the customer confirms in the channel, or the ticket closes after a set time, or the customer's
message cancels it) and the customer's transcript by direct message."""

from datetime import timedelta

import pytest
from django.utils import timezone

from devtools.fakes.discord import interactions as fake_discord
from support import close_requests, tasks_workspace, transcript_dm
from support.models import Ticket, TicketStatus
from support.workspace_models import CloseRequestStatus, TicketCloseRequest, TranscriptDelivery
from tests.customers.factories import CustomerFactory
from tests.support.conftest import CUSTOMER_DISCORD_ID, open_ticket

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]


@pytest.fixture
def ticket(discord, send):
    CustomerFactory(discord_user_id=CUSTOMER_DISCORD_ID)
    open_ticket(send, subject="Cannot join")
    return Ticket.objects.get()


def ask_to_close(staff, ticket, run_on_commit, reason="works again"):
    with run_on_commit():
        response = staff.post(f"/admin/support/ticket/{ticket.pk}/act/close_request/", {"reason": reason})
    assert response.status_code == 302
    return TicketCloseRequest.objects.get(ticket=ticket, status=CloseRequestStatus.PENDING)


def question(discord, ticket, request):
    return next(m for m in discord.channel_messages(ticket.discord_channel_id) if m["id"] == request.message_id)


def answer(send, ticket, request, action, user_id=CUSTOMER_DISCORD_ID):
    custom_id = f"ticket:{ticket.pk}:{action}:{request.pk}"
    return send(fake_discord.button_click(custom_id, user_id=user_id, channel_id=ticket.discord_channel_id)).json()


def test_the_customer_confirms_the_close_request_in_the_channel(ticket, staff, discord, send, run_on_commit):
    request = ask_to_close(staff, ticket, run_on_commit)
    shown = question(discord, ticket, request)
    assert "Sam Rivera from support thinks this ticket is solved (works again)" in shown["content"]
    buttons = [b["custom_id"] for b in shown["components"][0]["components"]]
    assert buttons == [f"ticket:{ticket.pk}:close-confirm:{request.pk}", f"ticket:{ticket.pk}:close-keep:{request.pk}"]
    # Asking twice while waiting is refused; the question is in the channel once.
    with run_on_commit():
        staff.post(f"/admin/support/ticket/{ticket.pk}/act/close_request/", {"reason": "again"})
    asked = [
        m for m in discord.channel_messages(ticket.discord_channel_id) if "thinks this ticket is solved" in m["content"]
    ]
    assert len(asked) == 1
    # Someone else cannot answer for the customer.
    assert "Only the customer" in answer(send, ticket, request, "close-confirm", user_id="1999")["data"]["content"]
    reply = answer(send, ticket, request, "close-confirm")
    assert reply["type"] == 7 and "confirmed: closing" in reply["data"]["content"] and reply["data"]["components"] == []
    ticket.refresh_from_db()
    request.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED and request.status == CloseRequestStatus.CONFIRMED
    assert "confirmed the close request" in ticket.close_reason


def test_keep_open_leaves_the_ticket_open(ticket, staff, send, run_on_commit):
    request = ask_to_close(staff, ticket, run_on_commit)
    reply = answer(send, ticket, request, "close-keep")
    assert "kept this ticket open" in reply["data"]["content"]
    ticket.refresh_from_db()
    request.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN and request.status == CloseRequestStatus.KEPT_OPEN
    assert "already been answered" in answer(send, ticket, request, "close-confirm")["data"]["content"]


def test_without_an_answer_the_ticket_closes_after_the_set_time(ticket, staff, discord, run_on_commit, settings):
    settings.DISCORD_CLOSE_REQUEST_HOURS = 24
    request = ask_to_close(staff, ticket, run_on_commit)
    assert request.due_at - request.requested_at == timedelta(hours=24)
    with run_on_commit():
        early = close_requests.close_requests_run(now=request.due_at - timedelta(minutes=5))
    assert early["closed"] == 0
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    with run_on_commit():
        late = close_requests.close_requests_run(now=request.due_at + timedelta(minutes=1))
    assert late["closed"] == 1
    ticket.refresh_from_db()
    request.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED and request.status == CloseRequestStatus.EXPIRED
    assert ticket.close_reason == "No answer to the close request"


def test_a_customer_message_cancels_the_close_request(ticket, staff, discord, run_on_commit):
    request = ask_to_close(staff, ticket, run_on_commit)
    discord.post_message(ticket.discord_channel_id, author_id=CUSTOMER_DISCORD_ID, content="wait, it broke again")
    with run_on_commit():
        counts = close_requests.close_requests_run(now=request.due_at + timedelta(hours=1))
    assert counts == {"posted": 0, "cancelled": 1, "closed": 0}
    ticket.refresh_from_db()
    request.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN and request.status == CloseRequestStatus.CANCELLED


def test_the_activity_job_cancels_it_too(ticket, staff, discord, run_on_commit):
    from support import tasks

    request = ask_to_close(staff, ticket, run_on_commit)
    discord.post_message(ticket.discord_channel_id, author_id=CUSTOMER_DISCORD_ID, content="still broken")
    tasks.tickets_activity_task()
    request.refresh_from_db()
    assert request.status == CloseRequestStatus.CANCELLED


def close_from_the_page(staff, ticket, run_on_commit):
    with run_on_commit():
        staff.post(f"/admin/support/ticket/{ticket.pk}/act/close", {"reason": "Solved"})
        staff.post(f"/admin/support/ticket/{ticket.pk}/act/close/", {"reason": "Solved"})
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED


def test_the_customer_gets_the_transcript_by_direct_message(ticket, staff, discord, run_on_commit):
    discord.post_message(
        ticket.discord_channel_id, author_id=CUSTOMER_DISCORD_ID, content="**bold** and <@&1300000000000000001>"
    )
    close_from_the_page(staff, ticket, run_on_commit)
    dms = discord.dm_messages(CUSTOMER_DISCORD_ID)
    with_file = [m for m in dms if m["attachments"]]
    assert len(with_file) == 1
    attachment = with_file[0]["attachments"][0]
    assert attachment["filename"] == f"ticket-{ticket.pk}-transcript.html"
    html = discord.cdn[attachment["url"].split("?")[0].removeprefix(discord.url)]["data"].decode()
    assert "<strong>bold</strong>" in html and "@Staff" in html and "Cannot join" in html
    assert "/admin/" not in html  # nothing that points into the admin
    assert TranscriptDelivery.objects.get(ticket=ticket).status == "sent"
    # Sending again (a repeated task) sends nothing more.
    assert transcript_dm.transcript_dm_run(ticket_id=ticket.pk) == "nothing to do"
    assert len([m for m in discord.dm_messages(CUSTOMER_DISCORD_ID) if m["attachments"]]) == 1


def test_a_customer_who_takes_no_dms_is_recorded_not_retried(ticket, staff, discord, run_on_commit):
    discord.dms_closed.add(CUSTOMER_DISCORD_ID)
    close_from_the_page(staff, ticket, run_on_commit)
    delivery = TranscriptDelivery.objects.get(ticket=ticket)
    assert delivery.status == "refused" and "50007" in delivery.last_error and delivery.attempts == 1
    dm_posts = len(discord.requests_to("POST", r"/api/v10/channels/\d+/messages"))
    TranscriptDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(hours=1))
    tasks_workspace.close_requests_task()
    assert len(discord.requests_to("POST", r"/api/v10/channels/\d+/messages")) == dm_posts
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    page = staff.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()
    assert "Refused by Discord" in page


def test_a_question_whose_answers_were_all_lost_is_found_not_asked_twice(ticket, staff, discord, run_on_commit):
    discord.lose_answer_next("POST", r"/api/v10/channels/\d+/messages", times=4)  # every attempt of the first run
    with run_on_commit():
        staff.post(f"/admin/support/ticket/{ticket.pk}/act/close_request/", {"reason": ""})
    request = TicketCloseRequest.objects.get(ticket=ticket)
    assert request.message_id == "" and request.last_error
    with run_on_commit():
        assert close_requests.close_requests_run()["posted"] == 1
    request.refresh_from_db()
    asked = [
        m for m in discord.channel_messages(ticket.discord_channel_id) if "thinks this ticket is solved" in m["content"]
    ]
    assert len(asked) == 1 and request.message_id == asked[0]["id"]


def test_a_question_whose_first_task_died_after_discord_posted_it_is_found_not_asked_twice(
    ticket, staff, discord, run_on_commit
):
    # The task's answer is lost and the worker dies before it records anything; minutes later Discord has forgotten
    # the nonce, so only a look at the channel can tell that the question is there.
    discord.lose_answer_next("POST", r"/api/v10/channels/\d+/messages", times=4)
    with run_on_commit():
        staff.post(f"/admin/support/ticket/{ticket.pk}/act/close_request/", {"reason": ""})
    request = TicketCloseRequest.objects.get(ticket=ticket)
    TicketCloseRequest.objects.filter(pk=request.pk).update(last_error="")
    discord.nonces_expire()

    with run_on_commit():
        close_requests.close_requests_run()

    asked = [
        m for m in discord.channel_messages(ticket.discord_channel_id) if "thinks this ticket is solved" in m["content"]
    ]
    request.refresh_from_db()
    assert len(asked) == 1 and request.message_id == asked[0]["id"]


def test_a_transcript_dm_whose_answer_was_lost_is_found_by_the_retry_not_sent_twice(
    ticket, staff, discord, run_on_commit, settings
):
    settings.DISCORD_TRANSCRIPT_DM = False
    close_from_the_page(staff, ticket, run_on_commit)
    settings.DISCORD_TRANSCRIPT_DM = True
    # Discord posts the DM on every attempt of the first run, and no answer comes back.
    discord.lose_answer_next("POST", r"/api/v10/channels/\d+/messages", times=4)
    assert transcript_dm.transcript_dm_run(ticket_id=ticket.pk) == "retry"
    discord.nonces_expire()  # the retry job runs minutes later

    transcript_dm.transcript_dms_retry_run(now=timezone.now() + timedelta(minutes=10))

    with_file = [m for m in discord.dm_messages(CUSTOMER_DISCORD_ID) if m["attachments"]]
    assert len(with_file) == 1
    delivery = TranscriptDelivery.objects.get(ticket=ticket)
    assert delivery.status == "sent" and delivery.discord_message_id == with_file[0]["id"]
