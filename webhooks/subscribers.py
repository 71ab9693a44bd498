"""Lifecycle changes become outbound webhooks (purchase, at risk, churned, win-back, payment failed/recovered; a
subscription paused, resumed, set to cancel, or moved to another plan)."""

from customers import events as domain_events
from customers.models import DomainEvent

from .services import deliveries_create_for_event


@domain_events.subscriber(
    domain_events.CUSTOMER_STAGE_CHANGED,
    domain_events.PAYMENT_FAILED,
    domain_events.PAYMENT_RECOVERED,
    domain_events.SUBSCRIPTION_PAUSED,
    domain_events.SUBSCRIPTION_RESUMED,
    domain_events.SUBSCRIPTION_CANCEL_SCHEDULED,
    domain_events.SUBSCRIPTION_PLAN_CHANGED,
)
def on_lifecycle_event(event: DomainEvent) -> None:
    deliveries_create_for_event(event=event)
