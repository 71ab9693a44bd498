"""A ticket's entries on the customer's timeline, written where the channel opens (support/services.py) and where the
customer is proven later (support/identity.py): one builder, so both write the same entry under the same key."""

from customers import services as customer_services
from customers.models import TimelineSource

from .models import Ticket


def ticket_opened_record(*, ticket: Ticket, customer) -> None:
    """The customer's "ticket opened" timeline entry, keyed by the ticket's channel: recorded when the channel opens
    for a known customer, or later when the customer is proven (support/identity.py); the same key either way."""
    customer_services.timeline_event_record(
        customer=customer,
        source=TimelineSource.SUPPORT,
        source_key=f"ticket:{ticket.pk}:opened:{ticket.discord_channel_id}",
        kind="support.ticket_opened",
        occurred_at=ticket.opened_at,
        summary=f"Opened {ticket.get_category_display().lower()} ticket #{ticket.pk}: {ticket.subject}",
        payload={"category": ticket.category, "suggested_category": ticket.suggested_category},
        object_type="support.ticket",
        object_id=str(ticket.pk),
    )
