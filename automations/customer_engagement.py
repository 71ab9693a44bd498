"""What customers did with our emails, as querysets of one customer (a customer or an OuterRef, for `Exists(...)`) or
of every customer (their ids, for an `IN`): the behaviour conditions of marketing's segments.

Opens are the provider's open events minus machine opens (an open within AUTOMATIONS_MACHINE_OPEN_SECONDS of delivery:
a mail server or scanner, not a person). A privacy proxy that fetches later still counts (docs/automations.md).
"""

from datetime import datetime

from django.db.models import QuerySet

from .models import AutomationRule, EmailEvent, EmailEventType, EmailQueueItem, EmailTemplate, QueueStatus


def email_events_filter(*, event_type: str, since: datetime, customer=None) -> QuerySet[EmailEvent]:
    """Tracking events of `event_type` (opened, clicked, ...) since `since` on emails to `customer` or, left out, to
    any customer (`queue_item__customer_id` is then never null, so it is safe in a NOT IN)."""
    events = EmailEvent.objects.filter(type=event_type, occurred_at__gte=since)
    if customer is None:
        events = events.filter(queue_item__isnull=False)
    else:
        events = events.filter(queue_item__customer=customer)
    if event_type == EmailEventType.OPENED:
        events = events.filter(machine_open=False)
    return events


def emails_sent_filter(*, customer=None, template_ids=None, rule_ids=None) -> QuerySet[EmailQueueItem]:
    """Emails sent to `customer` (left out: to anyone), of one of the templates or one of the rules (either left
    out: any)."""
    emails = EmailQueueItem.objects.filter(status=QueueStatus.SENT)
    if customer is not None:
        emails = emails.filter(customer=customer)
    if template_ids is not None:
        emails = emails.filter(step__template_id__in=template_ids)
    if rule_ids is not None:
        emails = emails.filter(step__rule_id__in=rule_ids)
    return emails


def template_choices() -> list[tuple[int, str]]:
    """(id, name) of every email template, by name: what a "received the email" condition picks from."""
    return list(EmailTemplate.objects.order_by("name").values_list("pk", "name"))


def rule_choices() -> list[tuple[int, str]]:
    """(id, name) of every automation rule, by name."""
    return list(AutomationRule.objects.order_by("name").values_list("pk", "name"))
