"""Reactions to domain events (customers.events) and to Resend's tracking webhook (anymail's `tracking` signal).

Both are delivered at least once; the services they call are idempotent (unique constraints on enrollments and on
provider event ids).
"""

from anymail.signals import tracking
from django.dispatch import receiver

from customers.events import EVENT_NAMES, subscriber
from customers.models import DomainEvent

from .event_enrollment import enrollments_update_for_events
from .services import email_event_record

# anymail's normalised event types -> ours. "sent" is ours already (we record it when Resend accepts the email).
ANYMAIL_EVENT_TYPES = {
    "delivered": "delivered",
    "opened": "opened",
    "clicked": "clicked",
    "bounced": "bounced",
    "complained": "complained",
    "deferred": "deferred",
    "failed": "failed",
    "rejected": "failed",
}
# Resend events anymail reports as "unknown" (https://resend.com/docs/dashboard/webhooks/event-types).
RESEND_EVENT_TYPES = {"email.failed": "failed", "email.suppressed": "suppressed"}


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def resend_problem(raw: dict) -> tuple[str, str]:
    """(bounce type, what Resend said) from a bounced, failed or suppressed event; empty strings otherwise.

    email.bounced: data.bounce = {type: Permanent|Transient|Undetermined, subType, message}
    (https://resend.com/docs/webhooks/emails/bounced); email.failed: data.failed = {reason}
    (https://resend.com/docs/webhooks/emails/failed); email.suppressed: data.suppressed = {type, message}
    (https://resend.com/docs/webhooks/emails/suppressed).
    """
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    for key in ("bounce", "failed", "suppressed"):
        part = data.get(key)
        if isinstance(part, dict):
            kind = _text(part.get("subType")) or (_text(part.get("type")) if key == "suppressed" else "")
            message = _text(part.get("message")) or _text(part.get("reason"))
            bounce_type = _text(part.get("type")) if key == "bounce" else ""
            return bounce_type, f"{kind}: {message}" if kind and message else kind or message
    return "", ""


@subscriber(*EVENT_NAMES, batch=True)
def on_domain_events(events: list[DomainEvent]) -> None:
    # A drain's batch at once (automations.event_enrollment): exits, then starts, each customer's events in order.
    enrollments_update_for_events(events=events)


@receiver(tracking, dispatch_uid="automations.tracking")
def on_tracking_event(sender, event, esp_name, **kwargs) -> None:
    if esp_name != "Resend":
        return
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    event_type = ANYMAIL_EVENT_TYPES.get(event.event_type) or RESEND_EVENT_TYPES.get(raw.get("type", ""))
    if event_type is None or not event.event_id:
        return
    bounce_type, detail = resend_problem(raw)
    email_event_record(
        event_type=event_type,
        provider_event_id=event.event_id,
        provider_message_id=event.message_id or "",
        occurred_at=event.timestamp,
        url=event.click_url or "",
        user_agent=event.user_agent or "",
        recipient=event.recipient or "",
        bounce_type=bounce_type,
        detail=detail,
        payload=raw,
    )
