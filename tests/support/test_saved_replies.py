"""Saved replies: placeholders filled from the CRM in the email templates' sandbox and limits, the admin's checks,
posting from the ticket page once per key, and /reply with its autocomplete against the fake Discord."""

from datetime import UTC, datetime

import pytest
from jinja2 import TemplateError

from automations.template_budget import TemplateRenderLimitExceeded
from devtools.fakes.discord import interactions as fake_discord
from support import saved_replies
from support.models import SavedReply, SavedReplyUse, Ticket
from tests.billing.factories import SubscriptionFactory
from tests.customers.factories import CustomerFactory
from tests.support.conftest import CUSTOMER_DISCORD_ID, STAFF_ID, open_ticket

pytestmark = pytest.mark.django_db

STAFF_ROLES = [fake_discord.STAFF_ROLE_ID]
RENEWAL_BODY = (
    "Hi {{ customer.first_name }}! {% if subscription %}Your {{ subscription.product_name }} renews on "
    "{{ subscription.current_period_end|date }}.{% else %}You have no plan.{% endif %}"
    "{% if card_update_url %} Update your card: {{ card_update_url }}{% endif %}"
)


def reply(**fields) -> SavedReply:
    return SavedReply.objects.create(**{"title": "Renewal date", "body": RENEWAL_BODY, **fields})


@pytest.fixture
def customer():
    customer = CustomerFactory(name="Robin Miller", discord_user_id=CUSTOMER_DISCORD_ID, stripe_customer_id="cus_R1")
    SubscriptionFactory(
        customer=customer, product_name="Modded Server 8 GB", current_period_end=datetime(2027, 1, 9, tzinfo=UTC)
    )
    return customer


@pytest.fixture
def ticket(discord, send, customer):
    open_ticket(send)
    return Ticket.objects.get()


def test_placeholders_are_filled_from_the_crm_of_a_proven_customer(ticket):
    text = saved_replies.saved_reply_render(saved_reply=reply(), ticket=ticket)
    assert text.startswith("Hi Robin! Your Modded Server 8 GB renews on January 9, 2027. Update your card: http")
    assert "/billing/card-update/" in text


def test_an_unproven_discord_user_gets_no_account_details(discord, send, customer):
    customer.discord_user_id = ""
    customer.save()
    open_ticket(send, email=customer.email)  # a typed email proves nothing
    text = saved_replies.saved_reply_render(saved_reply=reply(), ticket=Ticket.objects.get())
    assert text == "Hi there! You have no plan."
    assert "Robin" not in text and "card-update" not in text


def test_the_sandbox_and_its_limits_are_the_email_templates(ticket):
    huge = reply(title="Huge", body="{{ 'a' * 10**9 }}")
    with pytest.raises(TemplateRenderLimitExceeded):
        saved_replies.saved_reply_render(saved_reply=huge, ticket=ticket)
    too_long = reply(title="Too long", body="{% for i in range(300) %}0123456789{% endfor %}")
    with pytest.raises(TemplateRenderLimitExceeded):  # a Discord message holds 2,000 characters
        saved_replies.saved_reply_render(saved_reply=too_long, ticket=ticket)
    internals = reply(title="Internals", body="{{ customer.__class__.__mro__ }}")
    with pytest.raises(TemplateError):  # no Python internals, and undefined names fail loudly
        saved_replies.saved_reply_render(saved_reply=internals, ticket=ticket)


def test_the_admin_refuses_a_body_that_fails_for_some_customer(admin_client):
    url = "/admin/support/savedreply/add/"
    # Works for Alex, fails for the sample customer without a subscription: caught at save, as for email templates.
    answer = admin_client.post(url, {"title": "Plan", "category": "", "body": "{{ subscription.product_name }}"})
    assert answer.status_code == 200 and "sample customer" in answer.content.decode()
    endless = "{% for i in range(10**9) %}x{% endfor %}"
    answer = admin_client.post(url, {"title": "Loop", "category": "", "body": endless})
    assert answer.status_code == 200 and not SavedReply.objects.exists()
    answer = admin_client.post(url, {"title": "Renewal", "category": "billing", "public": "on", "body": RENEWAL_BODY})
    assert answer.status_code == 302
    saved = SavedReply.objects.get()
    assert (saved.category, saved.public, saved.updated_by) == ("billing", True, "admin")
    page = admin_client.get(f"/admin/support/savedreply/{saved.pk}/change/").content.decode()
    assert "Hi Alex! Your Modded Server 8 GB renews on December 1, 2026." in page


def test_saved_reply_post_posts_once_per_key(ticket, discord, django_capture_on_commit_callbacks):
    saved = reply()
    for _ in range(2):  # a double click: the same form token
        with django_capture_on_commit_callbacks(execute=True):
            use = saved_replies.saved_reply_post(saved_reply=saved, ticket=ticket, staff_name="Kim", key="form-1")
    posted = [m for m in discord.channel_messages(ticket.discord_channel_id) if m["content"].startswith("Hi Robin")]
    assert len(posted) == 1
    use.refresh_from_db()
    assert use.posted_at and use.discord_message_id == posted[0]["id"]
    # A retried task after a lost answer posts nothing more (our use is posted; Discord also enforces the nonce).
    from support.saved_reply_workflows import saved_reply_post_task

    assert saved_reply_post_task(use.pk) == "nothing to do"
    SavedReplyUse.objects.filter(pk=use.pk).update(posted_at=None)
    assert saved_reply_post_task(use.pk) == "posted"
    assert len([m for m in discord.channel_messages(ticket.discord_channel_id) if m["content"].startswith("Hi")]) == 1


def autocomplete(send, ticket, typed, *, roles=STAFF_ROLES, user_id=STAFF_ID):
    payload = fake_discord.slash_command("reply", {"reply": typed}, focused="reply", user_id=user_id, roles=roles,
                                         channel_id=ticket.discord_channel_id)  # fmt: skip
    return send(payload).json()


def test_autocomplete_lists_the_replies_of_the_tickets_category(ticket, send):
    renewal = reply(category="technical")
    reply(title="Refund policy", category="billing", body="We refund within 14 days.")
    reply(title="Restart your server", category="", body="Press restart in the panel.")
    answer = autocomplete(send, ticket, "re")
    assert answer["type"] == 8
    assert [c["name"] for c in answer["data"]["choices"]] == ["Renewal date", "Restart your server"]
    answer = autocomplete(send, ticket, "renew")
    assert answer["data"]["choices"] == [{"name": "Renewal date", "value": str(renewal.pk)}]
    assert autocomplete(send, ticket, "re", roles=[], user_id=CUSTOMER_DISCORD_ID)["data"]["choices"] == []


def test_reply_command_posts_the_rendered_reply_in_the_ticket_channel(ticket, send, discord):
    saved = reply()
    choice = autocomplete(send, ticket, "renewal")["data"]["choices"][0]["value"]
    payload = fake_discord.slash_command("reply", {"reply": choice}, user_id=STAFF_ID, roles=STAFF_ROLES,
                                         channel_id=ticket.discord_channel_id, username="kim")  # fmt: skip
    answer = send(payload).json()
    assert answer["type"] == 4 and "flags" not in answer["data"]  # posted in the channel, for the customer to read
    assert answer["data"]["content"].startswith("Hi Robin! Your Modded Server 8 GB renews on January 9, 2027.")
    assert send(payload).json()["data"]["content"] == "Already handled."  # a repeated delivery posts nothing
    use = SavedReplyUse.objects.get()
    assert (use.saved_reply, use.ticket, use.via, use.staff_name) == (saved, ticket, "discord", "kim")


def test_reply_command_is_for_staff_in_a_ticket_channel(ticket, send):
    reply()
    by_customer = fake_discord.slash_command("reply", {"reply": "Renewal date"}, user_id=CUSTOMER_DISCORD_ID,
                                             channel_id=ticket.discord_channel_id)  # fmt: skip
    assert "Only support staff" in send(by_customer).json()["data"]["content"]
    elsewhere = fake_discord.slash_command("reply", {"reply": "Renewal date"}, user_id=STAFF_ID, roles=STAFF_ROLES)
    assert "in a ticket's channel" in send(elsewhere).json()["data"]["content"]
    typed = fake_discord.slash_command("reply", {"reply": "no such reply"}, user_id=STAFF_ID, roles=STAFF_ROLES,
                                       channel_id=ticket.discord_channel_id)  # fmt: skip
    assert "Pick a saved reply" in send(typed).json()["data"]["content"]
    assert not SavedReplyUse.objects.exists()


def test_the_panel_command_registers_reply_with_autocomplete(discord, settings):
    from django.core.management import call_command

    discord.add_text_channel(fake_discord.SUPPORT_CHANNEL_ID, "support")
    call_command("support_panel")
    call_command("support_panel")  # again: the same commands, nothing added
    assert [c["name"] for c in discord.commands] == ["reply"]
    option = discord.commands[0]["options"][0]
    assert option["autocomplete"] is True and option["type"] == 3
    assert discord.commands[0]["guild_id"] == settings.DISCORD_GUILD_ID


def test_the_ticket_page_context_fills_in_the_chosen_reply(ticket):
    from support.ticket_page_replies import saved_reply_page_context

    renewal = reply(category="technical")
    billing_only = reply(title="Refunds", category="billing", body="Refunds take 5 days.")
    broken = reply(title="Broken", body="{{ 'a' * 10**9 }}")
    context = saved_reply_page_context(ticket=ticket, chosen=str(renewal.pk))
    assert context["saved_replies"] == [(broken.pk, "Broken"), (renewal.pk, "Renewal date")]
    assert context["reply_prefill"].startswith("Hi Robin! Your Modded Server 8 GB renews on January 9, 2027.")
    assert saved_reply_page_context(ticket=ticket, chosen=str(billing_only.pk))["reply_prefill"] == ""
    assert saved_reply_page_context(ticket=ticket, chosen="x'; --")["reply_prefill"] == ""
    assert (
        "could not be filled in" in saved_reply_page_context(ticket=ticket, chosen=str(broken.pk))["saved_reply_error"]
    )
