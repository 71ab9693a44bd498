"""Unlink every Discord id that was stored on a customer only because someone typed the customer's email in the ticket
form (the `discord.linked` timeline entry keyed `discord-link:<id>` that support.services wrote), and say so on the
customer's timeline. Anyone could type anyone's email; from now on a link needs proof (support/identity.py).

A link staff set by hand afterwards (an audited edit of the Discord id to the same value) is proof and stays. The
tickets of an unlinked Discord user lose their customer (they keep the email, shown to staff as "unverified: typed
email x"), so their channels show no account details; they come back to the customer when the link is confirmed or
made by staff. Running it again finds nothing more to do.
"""

from django.db import migrations
from django.utils import timezone


def unlink_typed_email_links(apps, schema_editor):
    Customer = apps.get_model("customers", "Customer")
    TimelineEvent = apps.get_model("customers", "TimelineEvent")
    StaffAction = apps.get_model("customers", "StaffAction")
    Ticket = apps.get_model("support", "Ticket")
    now = timezone.now()
    typed = TimelineEvent.objects.filter(kind="discord.linked", source="discord", source_key__startswith="discord-link:")
    for event in typed.order_by("occurred_at", "id").iterator():
        discord_user_id = event.object_id
        customer = Customer.objects.select_for_update().get(pk=event.customer_id)
        if not discord_user_id or customer.discord_user_id != discord_user_id:
            continue  # changed since (by staff or a later link): not the typed-email link any more
        edits = StaffAction.objects.filter(customer=customer, action="contact_edit", created_at__gt=event.occurred_at)
        if any((a.details.get("discord_user_id") or {}).get("to") == discord_user_id for a in edits):
            continue  # staff set this id by hand after the typed-email link: a staff link stays
        tickets = Ticket.objects.filter(customer=customer, discord_user_id=discord_user_id)
        ticket_ids = sorted(tickets.values_list("pk", flat=True))
        for ticket in tickets:
            ticket.customer = None
            ticket.customer_link = ""
            ticket.contact_email = ticket.contact_email or customer.email
            ticket.save(update_fields=["customer", "customer_link", "contact_email"])
        customer.discord_user_id = ""
        customer.save(update_fields=["discord_user_id", "updated_at"])
        TimelineEvent.objects.get_or_create(
            source="discord",
            source_key=f"discord-unlink-typed-email:{customer.pk}:{discord_user_id}",
            defaults={
                "customer": customer,
                "kind": "discord.unlinked",
                "occurred_at": now,
                "summary": (
                    f"Discord user {discord_user_id} unlinked: it had been linked only because someone typed this "
                    "customer's email in a ticket form, which proves nothing. The customer can confirm it from "
                    "their mailbox (the next ticket with their email sends a link), or staff can link it by hand."
                )[:300],
                "payload": {
                    "discord_user_id": discord_user_id,
                    "linked_at": event.occurred_at.isoformat(),
                    "tickets": ticket_ids,
                },
                "object_type": "discord.user",
                "object_id": discord_user_id,
            },
        )
    # Tickets that were only matched by the typed email (the Discord id was not stored, e.g. the customer had another
    # one) were never proof either.
    Ticket.objects.filter(customer_link="email").update(customer=None, customer_link="")


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0009_funnel_arrivals"),
        ("support", "0003_discord_link_requests"),
    ]

    operations = [migrations.RunPython(unlink_typed_email_links, migrations.RunPython.noop)]
