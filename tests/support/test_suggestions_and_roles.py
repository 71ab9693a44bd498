"""Before a ticket opens, the form offers matching public saved replies ("this solved it" avoids a ticket, "I still
need help" opens it as typed); a category's own staff role sees its channels and is the one notified."""

import pytest

from devtools.fakes.discord import interactions as fake_discord
from support.models import CategoryStaffRole, PanelSuggestion, SavedReply, Ticket
from tests.customers.factories import CustomerFactory
from tests.support.conftest import CUSTOMER_DISCORD_ID, STAFF_ID, open_ticket

pytestmark = pytest.mark.django_db

BILLING_ROLE = "1300000000000000099"


@pytest.fixture
def public_replies():
    return {
        "invoice": SavedReply.objects.create(
            title="Where is my invoice?", category="billing", public=True, keywords="receipt download",
            body="Hi {{ customer.first_name }}, invoices are in the panel under Billing.",
        ),
        "crash": SavedReply.objects.create(
            title="Server crashes on start", category="technical", public=True, keywords="crash",
            body="Remove the last mod you added, then restart.",
        ),
        "private": SavedReply.objects.create(
            title="Invoice refund (staff only)", category="billing", body="Refunds take 5 days.",
        ),
    }  # fmt: skip


def suggestion_buttons(answer: dict) -> list[dict]:
    return answer["data"]["components"][0]["components"]


def test_matching_public_replies_are_offered_before_a_ticket_opens(discord, send, public_replies):
    CustomerFactory(name="Robin Miller", discord_user_id=CUSTOMER_DISCORD_ID)
    answer = open_ticket(send, category="billing", subject="Invoice missing", description="I need a receipt").json()
    assert answer["type"] == 4 and answer["data"]["flags"] == 64  # only the customer sees it
    assert [e["title"] for e in answer["data"]["embeds"]] == ["Where is my invoice?"]  # public, same category
    assert answer["data"]["embeds"][0]["description"] == "Hi Robin, invoices are in the panel under Billing."
    labels = [b["label"] for b in suggestion_buttons(answer)]
    assert labels == ["This solved it: Where is my invoice?", "I still need help"]
    assert not Ticket.objects.exists() and not discord.ticket_channels()


def test_this_solved_it_records_a_ticket_avoided(discord, send, public_replies, admin_client):
    answer = open_ticket(send, category="billing", subject="Invoice missing", description="where?").json()
    solved = suggestion_buttons(answer)[0]["custom_id"]
    assert send(fake_discord.button_click(solved, user_id="1700000000000000999")).json()["type"] == 4  # not theirs
    update = send(fake_discord.button_click(solved, user_id=CUSTOMER_DISCORD_ID)).json()
    assert update["type"] == 7 and "No ticket was opened" in update["data"]["content"]
    suggestion = PanelSuggestion.objects.get()
    assert (suggestion.outcome, suggestion.solved_by) == ("solved", public_replies["invoice"])
    assert not Ticket.objects.exists()
    help_button = suggestion_buttons(answer)[1]["custom_id"]
    refused = send(fake_discord.button_click(help_button, user_id=CUSTOMER_DISCORD_ID)).json()
    assert "already answered" in refused["data"]["content"] and not Ticket.objects.exists()
    page = admin_client.get("/admin/support/savedreply/").content.decode()
    assert "<strong>1</strong> in all" in page


def test_i_still_need_help_opens_the_ticket_as_typed(discord, send, public_replies):
    answer = open_ticket(send, category="technical", subject="Crash loop", description="It crashes on start").json()
    assert [e["title"] for e in answer["data"]["embeds"]] == ["Server crashes on start"]
    help_button = fake_discord.button_click(suggestion_buttons(answer)[-1]["custom_id"], user_id=CUSTOMER_DISCORD_ID)
    update = send(help_button).json()
    assert update["type"] == 7 and update["data"]["content"] == "Opening your ticket…"
    ticket = Ticket.objects.get()
    assert (ticket.category, ticket.subject, ticket.description, ticket.status) == (
        "technical", "Crash loop", "It crashes on start", "open",
    )  # fmt: skip
    assert discord.originals[help_button["token"]]["content"] == f"Your ticket is open: <#{ticket.discord_channel_id}>"
    assert PanelSuggestion.objects.get().ticket == ticket
    again = send(fake_discord.button_click(suggestion_buttons(answer)[-1]["custom_id"], user_id=CUSTOMER_DISCORD_ID))
    assert "already answered" in again.json()["data"]["content"] and Ticket.objects.count() == 1


def test_no_match_opens_the_ticket_at_once(discord, send, public_replies):
    response = open_ticket(send, category="billing", subject="Change my company name", description="on the account")
    assert response.json() == {"type": 5, "data": {"flags": 64}}
    assert Ticket.objects.get().status == "open" and not PanelSuggestion.objects.exists()


def test_a_category_role_sees_its_channels_and_is_the_one_notified(discord, send):
    CategoryStaffRole.objects.create(category="billing", role_id=BILLING_ROLE, role_name="Billing team")
    open_ticket(send, category="billing", subject="Charged twice", description="twice this month")
    ticket = Ticket.objects.get()
    overwrites = {o["id"]: o for o in discord.channels[ticket.discord_channel_id]["permission_overwrites"]}
    assert overwrites[BILLING_ROLE]["allow"] == "117760"
    assert fake_discord.STAFF_ROLE_ID not in overwrites  # the general staff role does not see billing tickets
    opening = discord.channel_messages(ticket.discord_channel_id)[0]
    assert opening["content"].startswith(f"<@&{BILLING_ROLE}> new **Billing** ticket")
    claim = fake_discord.button_click(f"ticket:{ticket.pk}:claim", user_id=STAFF_ID, roles=[BILLING_ROLE],
                                      channel_id=ticket.discord_channel_id)  # fmt: skip
    assert send(claim).json()["type"] == 7
    ticket.refresh_from_db()
    assert ticket.claimed_by_discord_id == STAFF_ID


def test_other_categories_keep_the_general_staff_role(discord, send):
    CategoryStaffRole.objects.create(category="billing", role_id=BILLING_ROLE)
    open_ticket(send, category="technical")
    ticket = Ticket.objects.get()
    overwrites = {o["id"] for o in discord.channels[ticket.discord_channel_id]["permission_overwrites"]}
    assert fake_discord.STAFF_ROLE_ID in overwrites and BILLING_ROLE not in overwrites
    claim = fake_discord.button_click(f"ticket:{ticket.pk}:claim", user_id=STAFF_ID, roles=[BILLING_ROLE],
                                      channel_id=ticket.discord_channel_id)  # fmt: skip
    assert "Only support staff" in send(claim).json()["data"]["content"]
