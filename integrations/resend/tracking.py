"""Resend's tracking events (through anymail's `tracking` signal) mapped to the provider-neutral TrackingEvent.

The webhook view (webhooks.py) verifies the Svix signature and sends anymail's signal; this receiver maps each event
and hands it to the email queue through integrations.email_transport.tracking_event_deliver.
"""

from anymail.signals import tracking
from django.dispatch import receiver

from integrations.email_transport import TrackingEvent, tracking_event_deliver

# anymail's normalised event types -> the queue's. "sent" is the queue's already (recorded when Resend accepts).
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


def tracking_event_from_anymail(event) -> TrackingEvent | None:
    """The neutral event for one of anymail's Resend AnymailTrackingEvents, or None for one the queue ignores."""
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    event_type = ANYMAIL_EVENT_TYPES.get(event.event_type) or RESEND_EVENT_TYPES.get(raw.get("type", ""))
    if event_type is None or not event.event_id:
        return None
    bounce_type, detail = resend_problem(raw)
    return TrackingEvent(
        event_type=event_type,
        provider_event_id=event.event_id,
        provider="resend",
        provider_message_id=event.message_id or "",
        occurred_at=event.timestamp,
        url=event.click_url or "",
        user_agent=event.user_agent or "",
        recipient=event.recipient or "",
        bounce_type=bounce_type,
        detail=detail,
        payload=raw,
    )


@receiver(tracking, dispatch_uid="integrations.resend.tracking")
def on_anymail_tracking(sender, event, esp_name, **kwargs) -> None:
    if esp_name != "Resend":
        return
    mapped = tracking_event_from_anymail(event)
    if mapped is not None:
        tracking_event_deliver(mapped)
