"""Tracking events from the email provider (integrations.email_transport.TrackingEvent): recorded once each, linked
to their email, and applied to it (delivered, opened, bounced ...); hard bounces and complaints suppress the address.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from customers.services import normalize_email, timeline_event_record

from ..models import (
    SOFT_BOUNCE_LIMIT,
    SOFT_BOUNCE_WINDOW,
    BounceType,
    EmailEvent,
    EmailEventType,
    EmailQueueItem,
    Suppression,
    SuppressionReason,
)
from ..transports import transport_display_name
from .suppressions import suppression_add

logger = logging.getLogger(__name__)


ITEM_FIRST_TIMES = {
    EmailEventType.DELIVERED: "delivered_at",
    EmailEventType.OPENED: "opened_at",
    EmailEventType.CLICKED: "clicked_at",
    EmailEventType.COMPLAINED: "complained_at",
    EmailEventType.FAILED: "failed_at",
    EmailEventType.SUPPRESSED: "provider_suppressed_at",
}


def is_machine_open(*, opened_at: datetime, delivered_at: datetime | None) -> bool:
    if delivered_at is None:
        return False
    return opened_at - delivered_at < timedelta(seconds=settings.AUTOMATIONS_MACHINE_OPEN_SECONDS)


def _is_permanent_bounce(event: EmailEvent) -> bool:
    return event.type == EmailEventType.BOUNCED and event.bounce_type == BounceType.PERMANENT


@transaction.atomic
def email_event_record(
    *,
    event_type: str,
    provider_event_id: str,
    provider_message_id: str,
    occurred_at: datetime | None,
    url: str = "",
    user_agent: str = "",
    recipient: str = "",
    bounce_type: str = "",
    detail: str = "",
    payload: dict | None = None,
    provider: str = "",
) -> EmailEvent | None:
    """Store one tracking event (once per provider event id) and apply it. None when it was a repeat.

    `bounce_type` is the provider's bounce class for bounces (only "Permanent" means a dead address); `detail` what
    the provider said (bounce, failure or suppression message), kept on the email. `provider` (the transport's
    key in automations/transports.py) names it in the summary and namespaces the event id on the timeline."""
    occurred_at = occurred_at or timezone.now()
    item = (
        EmailQueueItem.objects.select_for_update()
        .select_related("customer", "step__template")
        .filter(provider_message_id=provider_message_id)
        .first()
        if provider_message_id
        else None
    )
    machine_open = False
    if event_type == EmailEventType.OPENED and item is not None:
        machine_open = is_machine_open(opened_at=occurred_at, delivered_at=item.delivered_at or item.sent_at)
    recipient = normalize_email(recipient or (item.recipient if item else ""))
    try:
        with transaction.atomic():
            event = EmailEvent.objects.create(
                queue_item=item,
                type=event_type,
                occurred_at=occurred_at,
                url=(url or "")[:2000],
                user_agent=(user_agent or "")[:500],
                provider_event_id=provider_event_id,
                provider_message_id=provider_message_id or "",
                recipient=recipient,
                machine_open=machine_open,
                bounce_type=(bounce_type or "")[:20] if event_type == EmailEventType.BOUNCED else "",
                detail=(detail or "")[:500],
                payload=payload or {},
            )
    except IntegrityError:
        return None  # the provider delivered this event before (webhooks are at least once)

    if recipient:
        _address_suppress_for(event=event, item=item, detail=detail)
    if item is None:
        logger.info("Tracking event %s for a message not (yet) known: %s", provider_event_id, provider_message_id)
        return event
    _email_event_apply(event=event, item=item, provider=provider)
    return event


def _address_suppress_for(*, event: EmailEvent, item: EmailQueueItem | None, detail: str) -> None:
    """A hard bounce or a complaint suppresses the address at once; soft bounces once they add up."""
    if _is_permanent_bounce(event):
        suppression_add(
            email=event.recipient,
            reason=SuppressionReason.HARD_BOUNCE,
            queue_item=item,
            note=detail or "Permanent bounce",
        )
    elif event.type == EmailEventType.BOUNCED:
        _soft_bounces_suppress(recipient=event.recipient, item=item)
    elif event.type == EmailEventType.COMPLAINED:
        suppression_add(email=event.recipient, reason=SuppressionReason.COMPLAINT, queue_item=item)


def _soft_bounces_suppress(*, recipient: str, item: EmailQueueItem | None) -> bool:
    """Suppress the address once SOFT_BOUNCE_LIMIT different emails to it bounced transiently within the window."""
    if connection.vendor == "postgresql":
        # Two bounce webhooks for one address at once must not each count the other as not there yet.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"soft-bounce:{recipient}"])
    bounced_emails = (
        EmailEvent.objects.filter(
            type=EmailEventType.BOUNCED,
            recipient=recipient,
            occurred_at__gte=timezone.now() - SOFT_BOUNCE_WINDOW,
        )
        .exclude(bounce_type=BounceType.PERMANENT)
        .values("provider_message_id")
        .distinct()
        .count()
    )
    if bounced_emails < SOFT_BOUNCE_LIMIT:
        return False
    suppression_add(
        email=recipient,
        reason=SuppressionReason.SOFT_BOUNCES,
        queue_item=item,
        note=f"{bounced_emails} emails bounced transiently within {SOFT_BOUNCE_WINDOW.days} days",
    )
    return True


def _bounce_summary(event: EmailEvent) -> str:
    label = f"bounced ({(event.bounce_type or 'undetermined').lower()})"
    if _is_permanent_bounce(event):
        return f"{label}: address suppressed"
    if Suppression.objects.filter(email=event.recipient, reason=SuppressionReason.SOFT_BOUNCES).exists():
        return f"{label}: address suppressed after repeated transient bounces"
    return f"{label}: not suppressed"


def _email_event_apply(*, event: EmailEvent, item: EmailQueueItem, provider: str) -> None:
    """What a tracking event changes on its email: first-time stamps for analytics, and the customer's timeline."""
    changed = []
    field = ITEM_FIRST_TIMES.get(event.type)
    if event.type == EmailEventType.BOUNCED:
        field = "bounced_at" if _is_permanent_bounce(event) else "soft_bounced_at"
    if field and (getattr(item, field) is None or event.occurred_at < getattr(item, field)):
        setattr(item, field, event.occurred_at)
        changed.append(field)
    first_human_open = item.human_opened_at is None or event.occurred_at < item.human_opened_at
    if event.type == EmailEventType.OPENED and not event.machine_open and first_human_open:
        item.human_opened_at = event.occurred_at
        changed.append("human_opened_at")
    machine = " (within seconds of delivery: a machine open)" if event.machine_open else ""
    provider_name = transport_display_name(provider)
    summaries = {
        EmailEventType.OPENED: f"opened{machine}",
        EmailEventType.CLICKED: f"clicked {event.url}",
        EmailEventType.FAILED: f"failed at {provider_name}",
        EmailEventType.SUPPRESSED: f"not sent: {provider_name} suppressed the address",
    }
    summary = _bounce_summary(event) if event.type == EmailEventType.BOUNCED else summaries.get(event.type, event.type)
    if event.type in (EmailEventType.BOUNCED, EmailEventType.FAILED, EmailEventType.SUPPRESSED):
        item.delivery_problem = (f"{summary}. {event.detail}" if event.detail else summary)[:500]
        changed.append("delivery_problem")
    if changed:
        item.save(update_fields=changed)
    timeline_event_record(
        customer=item.customer,
        source="email",
        source_key=f"{provider or 'email'}-event:{event.provider_event_id}",
        kind=f"email.{event.type}",
        occurred_at=event.occurred_at,
        summary=f"{item.step.template.name}: {summary}"[:500],
        payload={
            "queue_item_id": item.pk,
            "url": event.url,
            "machine_open": event.machine_open,
            "bounce_type": event.bounce_type,
            "detail": event.detail,
        },
        object_type="email.queue_item",
        object_id=str(item.pk),
    )


@transaction.atomic
def email_events_link_unmatched(*, provider_message_ids: list[str], provider: str = "") -> int:
    """Attach tracking events that arrived before we stored their message id (a webhook can beat our commit).
    `provider`: the transport that sent those messages (see email_event_record)."""
    events = list(
        EmailEvent.objects.select_for_update()
        .filter(queue_item__isnull=True, provider_message_id__in=[m for m in provider_message_ids if m])
        .order_by("occurred_at")
    )
    if not events:
        return 0
    items = {
        item.provider_message_id: item
        for item in EmailQueueItem.objects.select_for_update()
        .select_related("customer", "step__template")
        .filter(provider_message_id__in={e.provider_message_id for e in events})
    }
    linked = 0
    for event in events:
        item = items.get(event.provider_message_id)
        if item is None:
            continue
        event.queue_item = item
        if event.type == EmailEventType.OPENED:
            event.machine_open = is_machine_open(
                opened_at=event.occurred_at, delivered_at=item.delivered_at or item.sent_at
            )
        event.save(update_fields=["queue_item", "machine_open"])
        _email_event_apply(event=event, item=item, provider=provider)
        linked += 1
    return linked


def email_events_link_recent_unmatched(*, within: timedelta = timedelta(hours=24), provider: str = "") -> int:
    """Sweep for events that lost the race with our commit (both sides saw the other not yet committed)."""
    message_ids = list(
        EmailEvent.objects.filter(queue_item__isnull=True, received_at__gte=timezone.now() - within)
        .exclude(provider_message_id="")
        .values_list("provider_message_id", flat=True)
        .distinct()[:1000]
    )
    return email_events_link_unmatched(provider_message_ids=message_ids, provider=provider) if message_ids else 0
