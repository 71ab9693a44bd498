"""Writes of the automations app: enrollments, exits, queue items, suppressions, unsubscribes and tracking events.

Sending (claiming due items, calling the provider, recording the result) is in `automations.sending`.
"""

import functools
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from customers import events as domain_events
from customers.models import Customer, DomainEvent
from customers.selectors import customer_get_by_email
from customers.services import normalize_email, timeline_event_record

from .models import (
    AutomationRule,
    AutomationStep,
    EmailEvent,
    EmailEventType,
    EmailQueueItem,
    Enrollment,
    EnrollmentStatus,
    QueueStatus,
    ReentryPolicy,
    StepAnchor,
    Suppression,
    SuppressionReason,
)

logger = logging.getLogger(__name__)

# An exit event about another subscription ends an enrollment only if it is a new purchase: a customer who buys
# again leaves win-back whatever they bought, but a recovered payment on server B must not stop dunning for server A.
CUSTOMER_WIDE_EXIT_EVENTS = frozenset({domain_events.SUBSCRIPTION_CREATED, domain_events.CHECKOUT_COMPLETED})

UNSUBSCRIBE_SALT = "automations.unsubscribe"


# --- enrollment -------------------------------------------------------------------------------------------------


def rule_matches(*, rule: AutomationRule, customer: Customer, payload: dict[str, Any]) -> bool:
    if rule.condition_product_ids and payload.get("product_id") not in rule.condition_product_ids:
        return False
    if rule.condition_lifecycle_stages and customer.lifecycle_stage not in rule.condition_lifecycle_stages:
        return False
    return rule.condition_vip is None or customer.vip_status == rule.condition_vip


def _scope_key(*, rule: AutomationRule, event: DomainEvent) -> str:
    subscription_id = event.payload.get("subscription_id") or ""
    if rule.reentry == ReentryPolicy.ONCE_PER_CUSTOMER:
        return "customer"
    if rule.reentry == ReentryPolicy.ONCE_PER_SUBSCRIPTION and subscription_id:
        return f"subscription:{subscription_id}"
    return f"event:{event.key}"


def step_times(*, steps: list[AutomationStep], enrolled_at: datetime, context: dict[str, Any]) -> list[datetime]:
    """When each step (in order) is due."""
    next_payment_attempt = _parse_time(context.get("next_payment_attempt"))
    times = []
    previous = enrolled_at
    for step in steps:
        if step.anchor == StepAnchor.PREVIOUS_STEP:
            due = previous + step.delay
        elif step.anchor == StepAnchor.NEXT_PAYMENT_ATTEMPT and next_payment_attempt:
            due = next_payment_attempt + step.delay
        else:
            due = enrolled_at + step.delay
        times.append(due)
        previous = due
    return times


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str) and value:
        parsed = parse_datetime(value)
        if parsed and timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, UTC)
        return parsed
    return None


@transaction.atomic
def enrollments_start_for_event(*, event: DomainEvent) -> list[Enrollment]:
    """Enroll the event's customer in every enabled rule it triggers. Safe to run twice for the same event."""
    started = []
    rules = AutomationRule.objects.filter(enabled=True, trigger=event.name).prefetch_related("steps")
    for rule in rules:
        if not rule_matches(rule=rule, customer=event.customer, payload=event.payload):
            continue
        enrollment = enrollment_start(rule=rule, event=event)
        if enrollment is not None:
            started.append(enrollment)
    return started


@transaction.atomic
def enrollment_start(*, rule: AutomationRule, event: DomainEvent) -> Enrollment | None:
    """Start one enrollment and queue its emails; None when the re-entry policy (or a running copy) says no."""
    customer = event.customer
    subscription_id = event.payload.get("subscription_id") or ""
    running = Enrollment.objects.filter(
        rule=rule, customer=customer, subscription_id=subscription_id, status=EnrollmentStatus.ACTIVE
    ).first()
    if running is not None:
        if running.trigger_event_id != event.pk:
            # Stripe retried the invoice and failed again: the sequence keeps running, timed to the new attempt.
            enrollment_retime(enrollment=running, event=event)
        return None
    now = timezone.now()
    try:
        with transaction.atomic():
            enrollment = Enrollment.objects.create(
                rule=rule,
                customer=customer,
                scope_key=_scope_key(rule=rule, event=event),
                subscription_id=subscription_id,
                trigger_event=event,
                context=event.payload,
                enrolled_at=now,
            )
    except IntegrityError:
        # The re-entry policy, enforced by the unique constraints: already enrolled in this scope (or a second
        # dispatch of the same event won the race).
        return None
    steps = sorted(rule.steps.all(), key=lambda step: step.order)
    times = step_times(steps=steps, enrolled_at=now, context=event.payload)
    items = EmailQueueItem.objects.bulk_create(
        [
            EmailQueueItem(
                enrollment=enrollment,
                step=step,
                customer=customer,
                recipient=customer.email,
                scheduled_at=due,
                next_attempt_at=due,
                idempotency_key=f"email:enrollment-{enrollment.pk}:step-{step.pk}",
            )
            for step, due in zip(steps, times, strict=True)
        ]
    )
    if not items:
        enrollment.status = EnrollmentStatus.COMPLETED
        enrollment.completed_at = now
        enrollment.save(update_fields=["status", "completed_at"])
    elif any(item.scheduled_at <= now for item in items):
        # A "send now" step should not wait for the next scheduled queue run.
        transaction.on_commit(queue_process_enqueue)
    return enrollment


@transaction.atomic
def enrollment_retime(*, enrollment: Enrollment, event: DomainEvent) -> int:
    """Move the unsent steps anchored to Stripe's next payment attempt to the attempt the new event announces."""
    if not event.payload.get("next_payment_attempt"):
        return 0
    context = {**enrollment.context, **event.payload}
    items = list(
        enrollment.queue_items.select_for_update()
        .filter(status=QueueStatus.PENDING, step__anchor=StepAnchor.NEXT_PAYMENT_ATTEMPT)
        .select_related("step")
    )
    if not items:
        return 0
    steps = sorted(enrollment.rule.steps.all(), key=lambda step: step.order)
    due_by_step = dict(
        zip(
            [s.pk for s in steps],
            step_times(steps=steps, enrolled_at=enrollment.enrolled_at, context=context),
            strict=True,
        )
    )
    for item in items:
        item.scheduled_at = item.next_attempt_at = due_by_step.get(item.step_id, item.scheduled_at)
    EmailQueueItem.objects.bulk_update(items, ["scheduled_at", "next_attempt_at", "updated_at"])
    enrollment.context = context
    enrollment.save(update_fields=["context"])
    return len(items)


@transaction.atomic
def enrollments_exit_for_event(*, event: DomainEvent) -> list[Enrollment]:
    """End every running enrollment of the customer whose rule lists this event as an exit."""
    exited = []
    # A customer has a handful of running enrollments: filter the exit events here rather than with a JSON
    # `contains` lookup, which SQLite (the local run) does not have.
    running = (
        Enrollment.objects.select_for_update(of=("self",))
        .select_related("rule")
        .filter(customer=event.customer, status=EnrollmentStatus.ACTIVE)
    )
    subscription_id = event.payload.get("subscription_id") or ""
    for enrollment in running:
        if event.name not in (enrollment.rule.exit_events or []):
            continue
        other_subscription = (
            subscription_id and enrollment.subscription_id and subscription_id != enrollment.subscription_id
        )
        if other_subscription and event.name not in CUSTOMER_WIDE_EXIT_EVENTS:
            continue
        enrollment_exit(enrollment=enrollment, reason=f"{event.name} ({event.key})")
        exited.append(enrollment)
    return exited


@transaction.atomic
def enrollment_exit(*, enrollment: Enrollment, reason: str) -> int:
    """Stop an enrollment and cancel its emails that have not been handed to the provider. Returns how many."""
    now = timezone.now()
    enrollment.status = EnrollmentStatus.EXITED
    enrollment.exit_reason = reason[:200]
    enrollment.exited_at = now
    enrollment.save(update_fields=["status", "exit_reason", "exited_at"])
    return enrollment.queue_items.filter(status=QueueStatus.PENDING).update(
        status=QueueStatus.CANCELLED, last_error=f"Enrollment exited: {reason}"[:2000], updated_at=now
    )


def enrollments_complete_finished(*, enrollment_ids: set[int]) -> int:
    """Mark enrollments completed once none of their emails is waiting any more."""
    if not enrollment_ids:
        return 0
    return (
        Enrollment.objects.filter(pk__in=enrollment_ids, status=EnrollmentStatus.ACTIVE)
        .exclude(queue_items__status__in=[QueueStatus.PENDING, QueueStatus.SENDING])
        .update(status=EnrollmentStatus.COMPLETED, completed_at=timezone.now())
    )


def queue_process_enqueue() -> None:
    """Ask the task queue to drain due emails now (side effect: call only from on_commit or outside transactions).

    Coalesced: while one drain task is queued and not yet started, asking again adds nothing to the broker; running
    drains are limited to AUTOMATIONS_DRAIN_SLOTS and keep going while emails are due (automations.sending).
    """
    from django_q.tasks import async_task

    from .drain_control import drain_wake_claim

    if drain_wake_claim():
        async_task(
            "automations.tasks.email_queue_process_task", woken=True, task_name="automations:process-email-queue"
        )


# --- staff actions on the queue ----------------------------------------------------------------------------------


@transaction.atomic
def queue_items_retry_now(*, item_ids: list[int]) -> int:
    """Put failed emails back in the queue, due now, with their attempt count reset."""
    now = timezone.now()
    count = EmailQueueItem.objects.filter(pk__in=item_ids, status=QueueStatus.FAILED).update(
        status=QueueStatus.PENDING, attempts=0, next_attempt_at=now, last_error="", batch=None, updated_at=now
    )
    if count:
        transaction.on_commit(queue_process_enqueue)
    return count


@transaction.atomic
def queue_items_cancel(*, item_ids: list[int], reason: str = "Cancelled by staff") -> int:
    """Cancel emails that are still pending; anything already handed to the provider is left alone."""
    return EmailQueueItem.objects.filter(pk__in=item_ids, status=QueueStatus.PENDING).update(
        status=QueueStatus.CANCELLED, last_error=reason, updated_at=timezone.now()
    )


# --- suppressions and unsubscribe ---------------------------------------------------------------------------------


@transaction.atomic
def suppression_add(
    *, email: str, reason: str, queue_item: EmailQueueItem | None = None, note: str = ""
) -> tuple[Suppression, bool]:
    email = normalize_email(email)
    try:
        with transaction.atomic():
            return Suppression.objects.create(email=email, reason=reason, queue_item=queue_item, note=note[:300]), True
    except IntegrityError:
        return Suppression.objects.get(email=email, reason=reason), False


def unsubscribe_token_make(*, email: str, queue_item_id: int | None = None) -> str:
    """A signed token for the unsubscribe link. No expiry: an unsubscribe link in an old email must keep working."""
    return signing.dumps({"e": normalize_email(email), "q": queue_item_id}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_token_read(*, token: str) -> dict[str, Any] | None:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return data if isinstance(data, dict) and data.get("e") else None


def unsubscribe_url(*, email: str, queue_item_id: int | None = None) -> str:
    token = unsubscribe_token_make(email=email, queue_item_id=queue_item_id)
    return settings.SITE_URL + _unsubscribe_path().replace("TOKEN", token)


@functools.cache
def _unsubscribe_path() -> str:
    # Resolved once: reverse() per email costs more than signing the token, for the same answer every time.
    from django.urls import reverse

    return reverse("automations:unsubscribe", args=["TOKEN"])


@transaction.atomic
def email_unsubscribe(*, token: str) -> Suppression | None:
    """Record an unsubscribe from a signed link (idempotent). None for a token that is not ours."""
    data = unsubscribe_token_read(token=token)
    if data is None:
        return None
    email = data["e"]
    item = EmailQueueItem.objects.filter(pk=data.get("q"), recipient__iexact=email).first() if data.get("q") else None
    suppression, created = suppression_add(email=email, reason=SuppressionReason.UNSUBSCRIBE, queue_item=item)
    now = timezone.now()
    if item is not None and item.unsubscribed_at is None:
        EmailQueueItem.objects.filter(pk=item.pk, unsubscribed_at__isnull=True).update(unsubscribed_at=now)
    customer = item.customer if item is not None else customer_get_by_email(email=email)
    if customer is not None and created:
        timeline_event_record(
            customer=customer,
            source="email",
            source_key=f"unsubscribe:{email}:{suppression.pk}",
            kind="email.unsubscribed",
            occurred_at=now,
            summary="Unsubscribed from marketing emails",
            payload={"email": email, "queue_item_id": item.pk if item else None},
            object_type="email.queue_item" if item else "",
            object_id=str(item.pk) if item else "",
        )
    return suppression


# --- tracking ----------------------------------------------------------------------------------------------------

# Openers that are not people: mailbox privacy proxies that fetch every image on delivery, and security scanners.
# Gmail's image proxy is not listed: it fetches when the person opens the email.
MACHINE_OPEN_USER_AGENTS = (
    "yahoomailproxy",
    "barracuda",
    "mimecast",
    "proofpoint",
    "symantec",
    "trendmicro",
    "forcepoint",
    "bitdefender",
    "python-requests",
    "curl/",
    "go-http-client",
    "headlesschrome",
    "bot",
    "scanner",
)
# Apple Mail Privacy Protection fetches with a bare "Mozilla/5.0" user agent.
APPLE_MPP_USER_AGENT = "mozilla/5.0"

ITEM_FIRST_TIMES = {
    EmailEventType.DELIVERED: "delivered_at",
    EmailEventType.OPENED: "opened_at",
    EmailEventType.CLICKED: "clicked_at",
    EmailEventType.BOUNCED: "bounced_at",
    EmailEventType.COMPLAINED: "complained_at",
}


def is_machine_open(*, user_agent: str, opened_at: datetime, delivered_at: datetime | None) -> bool:
    agent = (user_agent or "").strip().lower()
    if agent == APPLE_MPP_USER_AGENT or any(marker in agent for marker in MACHINE_OPEN_USER_AGENTS):
        return True
    if delivered_at is not None:
        return opened_at - delivered_at < timedelta(seconds=settings.AUTOMATIONS_MACHINE_OPEN_SECONDS)
    return False


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
    payload: dict | None = None,
) -> EmailEvent | None:
    """Store one tracking event (once per provider event id) and apply it. None when it was a repeat."""
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
        machine_open = is_machine_open(
            user_agent=user_agent, opened_at=occurred_at, delivered_at=item.delivered_at or item.sent_at
        )
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
                recipient=recipient or (item.recipient if item else ""),
                machine_open=machine_open,
                payload=payload or {},
            )
    except IntegrityError:
        return None  # the provider delivered this event before (webhooks are at least once)

    if event_type == EmailEventType.BOUNCED and event.recipient:
        suppression_add(email=event.recipient, reason=SuppressionReason.HARD_BOUNCE, queue_item=item)
    elif event_type == EmailEventType.COMPLAINED and event.recipient:
        suppression_add(email=event.recipient, reason=SuppressionReason.COMPLAINT, queue_item=item)

    if item is None:
        logger.info("Tracking event %s for a message not (yet) known: %s", provider_event_id, provider_message_id)
        return event
    _email_event_apply(event=event, item=item)
    return event


def _email_event_apply(*, event: EmailEvent, item: EmailQueueItem) -> None:
    """What a tracking event changes on its email: first-time stamps for analytics, and the customer's timeline."""
    changed = []
    field = ITEM_FIRST_TIMES.get(event.type)
    if field and (getattr(item, field) is None or event.occurred_at < getattr(item, field)):
        setattr(item, field, event.occurred_at)
        changed.append(field)
    first_human_open = item.human_opened_at is None or event.occurred_at < item.human_opened_at
    if event.type == EmailEventType.OPENED and not event.machine_open and first_human_open:
        item.human_opened_at = event.occurred_at
        changed.append("human_opened_at")
    if changed:
        item.save(update_fields=changed)
    summaries = {
        EmailEventType.OPENED: "opened" + (" (machine open)" if event.machine_open else ""),
        EmailEventType.CLICKED: f"clicked {event.url}",
    }
    timeline_event_record(
        customer=item.customer,
        source="email",
        source_key=f"resend-event:{event.provider_event_id}",
        kind=f"email.{event.type}",
        occurred_at=event.occurred_at,
        summary=f"{item.step.template.name}: {summaries.get(event.type, event.type)}",
        payload={"queue_item_id": item.pk, "url": event.url, "machine_open": event.machine_open},
        object_type="email.queue_item",
        object_id=str(item.pk),
    )


@transaction.atomic
def email_events_link_unmatched(*, provider_message_ids: list[str]) -> int:
    """Attach tracking events that arrived before we stored their message id (a webhook can beat our commit)."""
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
                user_agent=event.user_agent, opened_at=event.occurred_at, delivered_at=item.delivered_at or item.sent_at
            )
        event.save(update_fields=["queue_item", "machine_open"])
        _email_event_apply(event=event, item=item)
        linked += 1
    return linked


def email_events_link_recent_unmatched(*, within: timedelta = timedelta(hours=24)) -> int:
    """Sweep for events that lost the race with our commit (both sides saw the other not yet committed)."""
    message_ids = list(
        EmailEvent.objects.filter(queue_item__isnull=True, received_at__gte=timezone.now() - within)
        .exclude(provider_message_id="")
        .values_list("provider_message_id", flat=True)
        .distinct()[:1000]
    )
    return email_events_link_unmatched(provider_message_ids=message_ids) if message_ids else 0
