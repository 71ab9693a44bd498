"""Queueing one marketing email to many customers at once (marketing's broadcasts), through the ordinary queue.

A bulk send is one hidden rule (`AutomationRule.sends_broadcast`: never enrolled by an event, not listed with the
rules) with one step per version of the email; each recipient gets one enrollment and one queue item, written in
bulk. The queue then treats them like any other marketing email: consent, suppressions, topics, the frequency cap and
quiet hours at claim time (automations/send_gates.py), pacing, idempotent batches, tracking and the timeline.

Every write here is idempotent on our own keys (the enrollment's unique (rule, customer, scope), the queue item's
unique idempotency key), so a caller that runs twice, or again after a crash, never makes a second email.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from customers.models import Topic

from ..drain_control import queue_process_enqueue
from ..models import (
    AutomationRule,
    AutomationStep,
    EmailQueueItem,
    EmailTemplate,
    Enrollment,
    EnrollmentStatus,
    QueueStatus,
    ReentryPolicy,
)
from ..rule_pause import PAUSED_NOTE

# The hidden rules' trigger: no domain event has this name, and the rules are disabled besides.
BULK_SEND_TRIGGER = "broadcast"


@transaction.atomic
def bulk_send_rule_create(
    *, name: str, topic: Topic, when_held: str, templates: list[EmailTemplate], resume_skip_after: timedelta
) -> AutomationRule:
    """The hidden rule of a bulk send, with one step per template (order 1..n, sent at once)."""
    unique_name = name[:100]
    if AutomationRule.objects.filter(name=unique_name).exists():
        unique_name = f"{name[:80]} ({timezone.now():%Y%m%d%H%M%S})"
    rule = AutomationRule.objects.create(
        name=unique_name,
        description="Carries a broadcast's emails through the queue (managed from the broadcast).",
        trigger=BULK_SEND_TRIGGER,
        enabled=False,
        reentry=ReentryPolicy.ONCE_PER_CUSTOMER,
        topic=topic,
        when_held=when_held,
        resume_skip_after=resume_skip_after,
        sends_broadcast=True,
    )
    AutomationStep.objects.bulk_create(
        [
            AutomationStep(rule=rule, order=order, delay=timedelta(0), template=template)
            for order, template in enumerate(templates, start=1)
        ]
    )
    return rule


def bulk_send_template_copy(*, template: EmailTemplate, name: str, subject: str) -> EmailTemplate:
    """A copy of `template` with another subject (an A/B test of subjects). Checked like the admin's form."""
    copy = EmailTemplate(
        name=name[:100],
        description=f"Copy of {template.name} with another subject (a broadcast's A/B test)"[:300],
        category=template.category,
        subject=subject,
        preheader=template.preheader,
        html_body=template.html_body,
        text_body=template.text_body,
    )
    copy.full_clean()
    copy.save()
    return copy


@dataclass(frozen=True)
class BulkRecipient:
    customer_id: int
    email: str
    step_id: int


def bulk_send_key(*, key_prefix: str, customer_id: int) -> str:
    """The email's idempotency key, from our ids: `email:<key_prefix>:customer-<id>`."""
    return f"email:{key_prefix}:customer-{customer_id}"


def bulk_send_queue(
    *,
    rule: AutomationRule,
    scope_key: str,
    key_prefix: str,
    recipients: list[BulkRecipient],
    now: datetime,
    cap_override: str = "",
) -> dict[int, int]:
    """Queue one email per recipient (in the caller's transaction): one enrollment each (scope `scope_key`) and one
    queue item (key bulk_send_key). Returns {customer id: queue item id} for every recipient, whether its email was
    queued now or by an earlier run. Emails of a paused rule are queued held."""
    if not recipients:
        return {}
    scope_key = scope_key[:300]
    Enrollment.objects.bulk_create(
        [
            Enrollment(rule=rule, customer_id=r.customer_id, scope_key=scope_key, context={}, enrolled_at=now)
            for r in recipients
        ],
        ignore_conflicts=True,
    )
    enrollments = dict(
        Enrollment.objects.filter(
            rule=rule, scope_key=scope_key, customer_id__in=[r.customer_id for r in recipients]
        ).values_list("customer_id", "pk")
    )
    held = AutomationRule.objects.filter(pk=rule.pk, paused_at__isnull=False).exists()
    status = QueueStatus.PAUSED if held else QueueStatus.PENDING
    keys = {r.customer_id: bulk_send_key(key_prefix=key_prefix, customer_id=r.customer_id) for r in recipients}
    EmailQueueItem.objects.bulk_create(
        [
            EmailQueueItem(
                enrollment_id=enrollments[r.customer_id],
                step_id=r.step_id,
                customer_id=r.customer_id,
                recipient=r.email,
                scheduled_at=now,
                next_attempt_at=now,
                status=status,
                last_error=PAUSED_NOTE if held else "",
                idempotency_key=keys[r.customer_id],
                frequency_cap_override=cap_override[:300],
            )
            for r in recipients
        ],
        ignore_conflicts=True,
    )
    items = dict(EmailQueueItem.objects.filter(idempotency_key__in=keys.values()).values_list("customer_id", "pk"))
    if not held:
        transaction.on_commit(queue_process_enqueue)
    return items


@transaction.atomic
def bulk_send_cancel(*, rule_id: int, reason: str) -> int:
    """Cancel the rule's emails not yet handed to the provider (pending or held) and end its running enrollments.
    Returns how many emails were cancelled."""
    now = timezone.now()
    cancelled = EmailQueueItem.objects.filter(
        step__rule_id=rule_id, status__in=[QueueStatus.PENDING, QueueStatus.PAUSED]
    ).update(status=QueueStatus.CANCELLED, last_error=reason[:2000], updated_at=now)
    Enrollment.objects.filter(rule_id=rule_id, status=EnrollmentStatus.ACTIVE).exclude(
        queue_items__status=QueueStatus.SENDING
    ).update(status=EnrollmentStatus.EXITED, exit_reason=reason[:200], exited_at=now)
    return cancelled


def bulk_send_unfinished(*, rule_id: int) -> bool:
    """Whether any email of the rule is still waiting (pending or held) or being sent."""
    return EmailQueueItem.objects.filter(
        step__rule_id=rule_id, status__in=[QueueStatus.PENDING, QueueStatus.PAUSED, QueueStatus.SENDING]
    ).exists()
