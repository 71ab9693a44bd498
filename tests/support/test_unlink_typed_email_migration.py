"""The data migration that unlinks every Discord id stored only because someone typed a customer's email in the ticket
form (support/migrations/0004_unlink_discord_ids_linked_by_typed_email.py), run on rows as the old code wrote them."""

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps

from customers.models import StaffAction, TimelineEvent
from support.models import Ticket
from tests.customers.factories import CustomerFactory, StaffUserFactory, TimelineEventFactory
from tests.support.conftest import open_ticket
from tests.support.factories import TicketFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("support.migrations.0004_unlink_discord_ids_linked_by_typed_email")
IMPOSTOR_ID = "1700000000000000666"


def linked_by_typed_email(customer, discord_user_id, *, at):
    """What support.services._customer_link wrote before: the id on the customer and a `discord.linked` entry."""
    customer.discord_user_id = discord_user_id
    customer.save()
    TimelineEventFactory(
        customer=customer,
        source="discord",
        source_key=f"discord-link:{discord_user_id}",
        kind="discord.linked",
        occurred_at=at,
        summary=f"Discord user {discord_user_id} linked by the email given in a ticket",
        object_type="discord.user",
        object_id=discord_user_id,
    )


def test_typed_email_links_are_undone_and_recorded(discord, send):
    earlier = datetime.now(UTC) - timedelta(days=3)
    victim = CustomerFactory(email="victoria@example.com", name="Victoria Vance", vip_status=True)
    linked_by_typed_email(victim, IMPOSTOR_ID, at=earlier)
    first = TicketFactory(
        discord_user_id=IMPOSTOR_ID, category="billing", customer=victim, customer_link="email",
        contact_email="victoria@example.com", status="closed",
    )  # fmt: skip
    second = TicketFactory(
        discord_user_id=IMPOSTOR_ID, category="technical", customer=victim, customer_link="discord", status="closed"
    )
    # Staff set this customer's id by hand after the typed-email link (an audited contact edit): that link stays.
    checked = CustomerFactory(email="checked@example.com")
    linked_by_typed_email(checked, "1700000000000000777", at=earlier)
    StaffAction.objects.create(
        customer=checked,
        actor=StaffUserFactory(),
        actor_name="jonas",
        action="contact_edit",
        details={"discord_user_id": {"from": "", "to": "1700000000000000777"}},
    )
    # A Discord id that never came from the form is untouched.
    other = CustomerFactory(email="other@example.com", discord_user_id="1700000000000000888")

    migration.unlink_typed_email_links(apps, None)
    migration.unlink_typed_email_links(apps, None)  # running again finds nothing more

    victim.refresh_from_db()
    checked.refresh_from_db()
    other.refresh_from_db()
    assert victim.discord_user_id == ""
    assert checked.discord_user_id == "1700000000000000777" and other.discord_user_id == "1700000000000000888"
    unlinked = TimelineEvent.objects.get(customer=victim, kind="discord.unlinked")
    assert IMPOSTOR_ID in unlinked.summary and "typed" in unlinked.summary
    assert sorted(unlinked.payload["tickets"]) == sorted([first.pk, second.pk])
    assert not TimelineEvent.objects.filter(kind="discord.unlinked").exclude(customer=victim).exists()
    for ticket in (first, second):
        ticket.refresh_from_db()
        assert (ticket.customer, ticket.contact_email) == (None, "victoria@example.com")

    # The impostor's next ticket shows nothing of the victim's account.
    open_ticket(send, user_id=IMPOSTOR_ID, category="setup")
    ticket = Ticket.objects.get(category="setup")
    text = discord.channel_messages(ticket.discord_channel_id)[0]["content"]
    assert ticket.customer is None and "Victoria" not in text and "VIP" not in text and "Plan:" not in text
