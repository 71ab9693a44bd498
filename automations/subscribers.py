"""Reactions to domain events (customers.events) and to the email provider's tracking events
(integrations.email_transport.tracking_subscriber; the provider package maps its webhook to them).

Both are delivered at least once; the services they call are idempotent (unique constraints on enrollments and on
provider event ids).
"""

from customers.events import EVENT_NAMES, subscriber
from customers.models import DomainEvent
from integrations.email_transport import TrackingEvent, tracking_subscriber

from .event_enrollment import enrollments_update_for_events
from .services.tracking import email_event_record


@subscriber(*EVENT_NAMES, batch=True)
def on_domain_events(events: list[DomainEvent]) -> None:
    # A drain's batch at once (automations.event_enrollment): exits, then starts, each customer's events in order.
    enrollments_update_for_events(events=events)


@tracking_subscriber
def on_tracking_event(event: TrackingEvent) -> None:
    email_event_record(
        event_type=event.event_type,
        provider_event_id=event.provider_event_id,
        provider=event.provider,
        provider_message_id=event.provider_message_id,
        occurred_at=event.occurred_at,
        url=event.url,
        user_agent=event.user_agent,
        recipient=event.recipient,
        bounce_type=event.bounce_type,
        detail=event.detail,
        payload=event.payload,
    )
