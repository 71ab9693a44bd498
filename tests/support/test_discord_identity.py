"""A typed email is not proof of identity: what an impostor gets, and the two ways a Discord account is really linked
(the customer confirms from their mailbox, or staff link it by hand, audited). Signed interactions against the fake
Discord, the customer's page through HTTP, the admin through the test client."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.core.cache import cache

from customers.models import StaffAction, TimelineEvent
from devtools.fakes.discord import interactions as fake_discord
from support.identity import link_token
from support.models import DiscordLinkRequest, Ticket
from tests.customers.factories import CustomerFactory
from tests.support.conftest import CUSTOMER_DISCORD_ID, open_ticket

pytestmark = pytest.mark.django_db

IMPOSTOR_ID = "1700000000000000666"
ACCOUNT_DETAILS = ("Victoria Vance", "VIP", "Plan:", "stage", "payment failure", "Other tickets")


@pytest.fixture(autouse=True)
def _fresh_rate_limit():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def victim(db):
    return CustomerFactory(email="victoria@example.com", name="Victoria Vance", vip_status=True)


def opening_text(discord, ticket) -> str:
    return discord.channel_messages(ticket.discord_channel_id)[0]["content"]


def link_path(message) -> str:
    url = re.search(r"https?://\S+/support/discord-link/\S+", message.body).group(0)
    return url[url.index("/support/") :]


def test_an_impostor_typing_a_customers_email_sees_none_of_their_account(discord, send, victim):
    open_ticket(send, user_id=IMPOSTOR_ID, category="billing", email="Victoria@Example.com")
    open_ticket(send, user_id=IMPOSTOR_ID, category="technical", email="")  # the second ticket: no email typed
    victim.refresh_from_db()
    assert victim.discord_user_id == ""  # nothing stored on the customer
    for ticket in Ticket.objects.filter(discord_user_id=IMPOSTOR_ID):
        assert ticket.customer is None and ticket.priority == "normal"
        text = opening_text(discord, ticket)
        assert "not linked to the CRM" in text
        assert not [detail for detail in ACCOUNT_DETAILS if detail in text], text
    assert not TimelineEvent.objects.filter(customer=victim, kind__in=["discord.linked", "support.ticket_opened"])
    # The owner of the address is asked, at the address on file, after the ticket's transaction committed.
    assert [m.to for m in mail.outbox] == [["victoria@example.com"]]
    assert "Connect your Discord account" in mail.outbox[0].subject
    assert "/support/discord-link/" in mail.outbox[0].body


def test_the_channel_reads_the_same_whether_or_not_the_email_is_a_customers(discord, send, victim):
    """The form must not tell an impostor which addresses are customers'."""
    open_ticket(send, user_id=IMPOSTOR_ID, category="billing", email="victoria@example.com")
    open_ticket(send, user_id="1700000000000000667", category="billing", email="nobody@example.com")
    first, second = Ticket.objects.order_by("pk")
    assert opening_text(discord, first).replace(f"<@{IMPOSTOR_ID}>", "") == opening_text(discord, second).replace(
        "<@1700000000000000667>", ""
    )


def test_the_customer_confirms_from_their_mailbox_and_their_account_shows(discord, send, client, victim, run_on_commit):
    open_ticket(send, category="billing", email="victoria@example.com")
    ticket = Ticket.objects.get()
    path = link_path(mail.outbox[0])

    page = client.get(path)
    body = page.content.decode()
    assert page.status_code == 200
    # It says what confirming does before it does anything, with a POST button, on a page that needs no script or CDN.
    assert "victoria@example.com" in body and CUSTOMER_DISCORD_ID in body
    assert "our support staff see your ModReady account" in body and "This was not me" in body
    assert re.search(r'<form method="post">', body) and 'value="confirm"' in body
    assert "<script" not in body and not re.search(r'(src|href)="https?://', body)
    assert 'name="viewport"' in body
    victim.refresh_from_db()
    assert victim.discord_user_id == ""  # a GET (a mail scanner) changes nothing

    with run_on_commit():
        done = client.post(path, {"choice": "confirm"})
    assert done.status_code == 200 and "Your Discord account is connected" in done.content.decode()
    victim.refresh_from_db()
    ticket.refresh_from_db()
    assert victim.discord_user_id == CUSTOMER_DISCORD_ID
    assert (ticket.customer, ticket.customer_link) == (victim, "discord")
    linked = TimelineEvent.objects.get(customer=victim, kind="discord.linked")
    assert "confirmed from the customer's mailbox" in linked.summary
    assert TimelineEvent.objects.filter(customer=victim, kind="support.ticket_opened").count() == 1
    # The open ticket's opening message now shows the account to staff (refreshed after the commit).
    assert "VIP" in opening_text(discord, ticket)
    # And so does the next ticket, found by the proven Discord id.
    open_ticket(send, category="setup")
    assert "VIP" in opening_text(discord, Ticket.objects.get(category="setup"))

    again = client.post(path, {"choice": "confirm"})
    assert "This link was used already" in again.content.decode()
    assert TimelineEvent.objects.filter(customer=victim, kind="discord.linked").count() == 1


def test_this_was_not_me_links_nothing_and_stops_further_emails(discord, send, client, victim, settings):
    settings.DISCORD_REOPEN_COOLDOWN_MINUTES = 0
    open_ticket(send, user_id=IMPOSTOR_ID, category="billing", email="victoria@example.com")
    path = link_path(mail.outbox[0])
    answer = client.post(path, {"choice": "decline"})
    assert "nothing was connected" in answer.content.decode()
    victim.refresh_from_db()
    assert victim.discord_user_id == ""
    assert TimelineEvent.objects.filter(customer=victim, kind="discord.link_declined").count() == 1
    assert client.post(path, {"choice": "confirm"}).status_code == 200  # used: shows so, links nothing
    victim.refresh_from_db()
    assert victim.discord_user_id == ""
    open_ticket(send, user_id=IMPOSTOR_ID, category="technical", email="victoria@example.com")
    assert len(mail.outbox) == 1


def test_an_expired_or_altered_link_links_nothing(discord, send, client, victim, settings):
    open_ticket(send, user_id=IMPOSTOR_ID, email="victoria@example.com")
    path = link_path(mail.outbox[0])
    assert client.get(path[:-3] + "abc").status_code == 400
    settings.DISCORD_LINK_CONFIRM_MINUTES = -1  # the link is older than the (shortened) lifetime
    assert client.post(path, {"choice": "confirm"}).status_code == 410
    settings.DISCORD_LINK_CONFIRM_MINUTES = 30
    DiscordLinkRequest.objects.update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    expired = client.post(path, {"choice": "confirm"})
    assert expired.status_code == 410 and "expired" in expired.content.decode()
    victim.refresh_from_db()
    assert victim.discord_user_id == ""


def test_the_link_stops_working_when_the_accounts_email_changed(discord, send, client, victim):
    open_ticket(send, user_id=IMPOSTOR_ID, email="victoria@example.com")
    path = link_path(mail.outbox[0])
    victim.email = "new-address@example.com"
    victim.save()
    assert client.post(path, {"choice": "confirm"}).status_code == 410
    victim.refresh_from_db()
    assert victim.discord_user_id == ""


def test_the_form_cannot_flood_a_customers_mailbox(discord, send, victim):
    for n in range(6):
        open_ticket(send, user_id=f"17000000000000010{n}", category="billing", email="victoria@example.com")
    open_ticket(send, user_id="170000000000000100", category="setup", email="victoria@example.com")  # pending one
    assert len(mail.outbox) == 3


def test_the_confirmation_page_is_rate_limited(discord, send, client, victim):
    open_ticket(send, user_id=IMPOSTOR_ID, email="victoria@example.com")
    path = link_path(mail.outbox[0])
    statuses = [client.get(path + str(n)).status_code for n in range(25)]
    assert statuses[:20] == [400] * 20 and set(statuses[20:]) == {429}
    refused = client.post(path, {"choice": "confirm"})
    assert refused.status_code == 429 and refused["Retry-After"]
    victim.refresh_from_db()
    assert victim.discord_user_id == ""


def test_staff_see_unverified_in_the_admin_and_link_by_hand_audited(
    discord, send, client, support_user, victim, run_on_commit
):
    open_ticket(send, user_id=IMPOSTOR_ID, category="billing", email="victoria@example.com")
    ticket = Ticket.objects.get()
    client.force_login(support_user)
    page = client.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()
    assert "Unverified: typed email victoria@example.com" in page
    assert "Victoria Vance" in page and "waiting for the customer" in page
    listing = client.get("/admin/support/ticket/").content.decode()
    assert "unverified: typed email victoria@example.com" in listing

    form = client.get(f"/admin/support/ticket/{ticket.pk}/link-discord/")
    assert form.status_code == 200 and "Anyone can type any email" in form.content.decode()
    no_reason = client.post(f"/admin/support/ticket/{ticket.pk}/link-discord/", {"customer_email": victim.email})
    assert no_reason.status_code == 200  # the form again: a reason is required
    victim.refresh_from_db()
    assert victim.discord_user_id == ""

    with run_on_commit():
        done = client.post(
            f"/admin/support/ticket/{ticket.pk}/link-discord/",
            {"customer_email": victim.email, "reason": "She wrote from her address to confirm"},
            follow=True,
        )
    assert "linked Discord user" in done.content.decode()
    victim.refresh_from_db()
    ticket.refresh_from_db()
    assert victim.discord_user_id == IMPOSTOR_ID and ticket.customer == victim
    audit = StaffAction.objects.get(customer=victim, action="discord_link")
    assert audit.actor == support_user and audit.reason == "She wrote from her address to confirm"
    assert TimelineEvent.objects.filter(customer=victim, kind="staff.discord_link").count() == 1
    assert "VIP" in opening_text(discord, ticket)


def test_a_staff_member_without_the_right_cannot_link(discord, send, client, marketing_user, victim):
    open_ticket(send, user_id=IMPOSTOR_ID, email="victoria@example.com")
    ticket = Ticket.objects.get()
    client.force_login(marketing_user)
    answer = client.post(
        f"/admin/support/ticket/{ticket.pk}/link-discord/", {"customer_email": victim.email, "reason": "trust me"}
    )
    assert answer.status_code == 403
    victim.refresh_from_db()
    assert victim.discord_user_id == ""


def test_a_proven_link_shows_the_account(discord, send):
    CustomerFactory(email="linked@example.com", name="Linda", vip_status=True, discord_user_id=CUSTOMER_DISCORD_ID)
    open_ticket(send)
    text = opening_text(discord, Ticket.objects.get())
    assert "Linda" in text and "VIP" in text and fake_discord.GUILD_ID not in text


def test_a_link_email_whose_send_failed_goes_again_the_same_under_the_same_key(discord, send, victim, monkeypatch):
    """A send that timed out may have gone out: it is tried again by the retry job with the same message (the same
    link) under the same namespaced key, never dropped and never a different payload under that key."""
    from django.core.mail.message import EmailMessage

    from automations.installation import installation_id
    from support.tasks import tickets_retry_task

    sent_keys: list[str] = []
    real_send = EmailMessage.send

    def timing_out_once(self, *args, **kwargs):
        sent_keys.append(self.idempotency_key)
        if len(sent_keys) == 1:
            raise TimeoutError("Resend did not answer in time")
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(EmailMessage, "send", timing_out_once)
    open_ticket(send, category="billing", email="victoria@example.com")
    request = DiscordLinkRequest.objects.get()
    assert mail.outbox == [] and request.sent_at is None and "will retry" in request.send_error

    DiscordLinkRequest.objects.update(created_at=request.created_at - timedelta(minutes=2))
    tickets_retry_task()

    request.refresh_from_db()
    assert request.sent_at is not None and len(mail.outbox) == 1
    assert link_path(mail.outbox[0]).endswith(link_token(request))  # the same link the first try carried
    assert sent_keys == [f"{installation_id()}:discord-link-request:{request.pk}"] * 2
    tickets_retry_task()
    assert len(mail.outbox) == 1
