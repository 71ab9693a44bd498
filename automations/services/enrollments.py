"""Enrollment writes: start (by event, or when a skipped customer gets an address), re-time to a later payment
failure, exit, and complete; each start queues its emails."""

import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers import events as domain_events
from customers.lifecycle import CAMPAIGN_STAGES, COMEBACK_EVENTS
from customers.models import Customer, DomainEvent, TimelineEvent
from customers.services import timeline_event_record

from ..drain_control import queue_process_enqueue
from ..models import (
    STRIPE_RETRY_ANCHORS,
    AutomationRule,
    AutomationStep,
    EmailQueueItem,
    Enrollment,
    EnrollmentStatus,
    QueueStatus,
    StepAnchor,
)
from .campaigns import campaign_stage_on_end, campaign_stage_on_purchase
from .enrollment_policy import (
    enrollment_scope_key,
    failure_is_older,
    queue_item_key,
    retry_context,
    retry_occurrence,
    rule_matches,
    step_times,
    trigger_stale_reason,
)

logger = logging.getLogger(__name__)


# An exit event about another subscription ends an enrollment only if it is a new purchase: a customer who buys
# again leaves win-back whatever they bought, but a recovered payment on server B must not stop dunning for server A.
CUSTOMER_WIDE_EXIT_EVENTS = frozenset(
    {domain_events.SUBSCRIPTION_CREATED, domain_events.CHECKOUT_COMPLETED, domain_events.TRIAL_STARTED}
)


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
    """Start one enrollment and queue its emails; None when the re-entry policy (or a running copy) says no, when
    the trigger no longer holds, or when the customer has no email address (noted on the timeline, and started
    when an address arrives: enrollments_start_skipped)."""
    customer = event.customer
    stale = trigger_stale_reason(event=event)
    if stale:
        logger.info("Rule %s not started for %s: %s", rule.name, event.key, stale)
        return None
    subscription_id = event.payload.get("subscription_id") or ""
    # Locked, and status re-checked after the lock: an enrollment the drain completes meanwhile is not re-timed (its
    # emails are all out), and this failure starts a new one instead.
    running = (
        Enrollment.objects.select_for_update()
        .filter(rule=rule, customer=customer, subscription_id=subscription_id, status=EnrollmentStatus.ACTIVE)
        .first()
    )
    if running is not None:
        if running.trigger_event_id != event.pk:
            # Stripe retried the invoice and failed again: the sequence keeps running, timed to the new attempt.
            enrollment_retime(enrollment=running, event=event)
        return None
    if failure_already_followed(rule=rule, event=event):
        logger.info("Rule %s not started for %s: a later failure of the invoice was followed", rule.name, event.key)
        return None
    if not customer.email:
        enrollment_skipped_note(rule=rule, event=event)
        return None
    now = timezone.now()
    context = retry_context(event.payload, now=now, occurred_at=event.occurred_at)
    try:
        with transaction.atomic():
            enrollment = Enrollment.objects.create(
                rule=rule,
                customer=customer,
                scope_key=enrollment_scope_key(rule=rule, event=event),
                subscription_id=subscription_id,
                trigger_event=event,
                context=context,
                enrolled_at=now,
            )
    except IntegrityError:
        # The re-entry policy, enforced by the unique constraints: already enrolled in this scope (or a second
        # dispatch of the same event won the race).
        return None
    enrollment_queue_steps(enrollment=enrollment, context=context, now=now)
    return enrollment


def failure_already_followed(*, rule: AutomationRule, event: DomainEvent) -> bool:
    """Whether an ended enrollment of this rule already followed this invoice's failure or a later one. A failure
    dispatched late, after the dunning it belongs to has finished, must not start it again."""
    invoice_id, attempt_count = event.payload.get("invoice_id"), event.payload.get("attempt_count")
    if event.name != domain_events.PAYMENT_FAILED or not invoice_id or not isinstance(attempt_count, int):
        return False
    return Enrollment.objects.filter(
        rule=rule,
        customer=event.customer,
        subscription_id=event.payload.get("subscription_id") or "",
        context__invoice_id=invoice_id,
        context__attempt_count__gte=attempt_count,
    ).exists()


SKIPPED_NO_EMAIL = "automation.skipped_no_email"


def enrollment_skipped_note(*, rule: AutomationRule, event: DomainEvent) -> None:
    timeline_event_record(
        customer=event.customer,
        source="automations",
        source_key=f"skipped-no-email:rule-{rule.pk}:event-{event.pk}",
        kind=SKIPPED_NO_EMAIL,
        summary=f"{rule.name} not started: the customer has no email address (starts when one arrives)",
        payload={"rule_id": rule.pk, "domain_event_id": event.pk, "domain_event_key": event.key},
        object_type="automations.rule",
        object_id=str(rule.pk),
    )


@transaction.atomic
def enrollments_start_skipped(*, customer: Customer) -> list[Enrollment]:
    """The customer has an email address now: start what was skipped for lack of one, if its trigger still holds
    (trigger_stale_reason) and the rule is still enabled and matching. Safe to run twice (the enrollments' unique
    constraints)."""
    started: list[Enrollment] = []
    notes = TimelineEvent.objects.filter(customer=customer, source="automations", kind=SKIPPED_NO_EMAIL)
    for payload in notes.order_by("occurred_at", "id").values_list("payload", flat=True):
        rule = AutomationRule.objects.filter(pk=payload.get("rule_id"), enabled=True).first()
        event = DomainEvent.objects.select_related("customer").filter(pk=payload.get("domain_event_id")).first()
        if rule is None or event is None or event.customer_id != customer.pk or rule.trigger != event.name:
            continue
        if not rule_matches(rule=rule, customer=event.customer, payload=event.payload):
            continue
        enrollment = enrollment_start(rule=rule, event=event)
        if enrollment is not None:
            started.append(enrollment)
    return started


def enrollment_queue_items_build(*, enrollment: Enrollment, context: dict[str, Any], now: datetime) -> list:
    """The emails of a new enrollment, unsaved: one per active step (none for a step with no due time). Reads the
    rule's steps through `enrollment.rule.steps.all()`, so a prefetched rule costs no query."""
    steps = sorted((step for step in enrollment.rule.steps.all() if not step.retired), key=lambda step: step.order)
    times = step_times(steps=steps, enrolled_at=now, context=context)
    return [
        _queue_item(enrollment=enrollment, step=step, due=due, context=context)
        for step, due in zip(steps, times, strict=True)
        if due is not None
    ]


def enrollment_queue_steps(*, enrollment: Enrollment, context: dict[str, Any], now: datetime) -> None:
    """Queue one email per active step of a new enrollment (none for a step with no due time), or complete it."""
    items = EmailQueueItem.objects.bulk_create(
        enrollment_queue_items_build(enrollment=enrollment, context=context, now=now)
    )
    if not items:
        enrollment.status = EnrollmentStatus.COMPLETED
        enrollment.completed_at = now
        enrollment.save(update_fields=["status", "completed_at"])
    elif any(item.scheduled_at <= now for item in items):
        # A "send now" step should not wait for the next scheduled queue run.
        transaction.on_commit(queue_process_enqueue)


def _queue_item(*, enrollment: Enrollment, step: AutomationStep, due: datetime, context: dict) -> EmailQueueItem:
    occurrence = retry_occurrence(context) if step.anchor == StepAnchor.BEFORE_NEXT_PAYMENT_ATTEMPT else ""
    return EmailQueueItem(
        enrollment=enrollment,
        step=step,
        customer=enrollment.customer,
        recipient=enrollment.customer.email,
        scheduled_at=due,
        next_attempt_at=due,
        occurrence=occurrence,
        idempotency_key=queue_item_key(enrollment_id=enrollment.pk, step_id=step.pk, occurrence=occurrence),
    )


NO_RETRY_TO_REMIND_OF = "No announced retry left to remind of (Stripe stopped retrying, or the attempt has passed)"


@transaction.atomic
def enrollment_retime(*, enrollment: Enrollment, event: DomainEvent) -> int:
    """A later payment failure of the same subscription: time the steps anchored to Stripe's retries to what the new
    failure announces (the next attempt, or the end of the retries). Returns how many emails were moved, cancelled
    or added.

    Unsent emails are moved, never duplicated. The reminder before the next payment attempt goes out before every
    attempt Stripe announces: when the previous reminder has already left the queue (sent, sending, or in a batch
    the provider may have accepted), a new one is queued for the new attempt, under its own key. An older failure
    arriving late, or the same failure again, changes nothing (failure_is_older, and the unique occurrence per step)."""
    if "next_payment_attempt" not in event.payload:
        return 0
    enrollment = Enrollment.objects.select_for_update(of=("self",)).select_related("customer").get(pk=enrollment.pk)
    if enrollment.status != EnrollmentStatus.ACTIVE:
        return 0
    if failure_is_older(context=enrollment.context, payload=event.payload, occurred_at=event.occurred_at):
        logger.info("Enrollment %s: %s is older than the failure it follows; not re-timed", enrollment.pk, event.key)
        return 0
    now = timezone.now()
    context = {**enrollment.context, **retry_context(event.payload, now=now, occurred_at=event.occurred_at)}
    known = enrollment.context
    ended_again = event.payload["next_payment_attempt"] is None and known.get("next_payment_attempt", 0) is None
    if ended_again and known.get("retries_exhausted_at"):
        # The end of the retries seen again (a repeated event): the last notice stays timed to when it was first seen.
        context["retries_exhausted_at"] = enrollment.context["retries_exhausted_at"]
    enrollment.context = context
    enrollment.save(update_fields=["context"])

    moved, cancelled, added = _retime_plan(enrollment=enrollment, context=context, now=now)
    EmailQueueItem.objects.bulk_update(
        moved, ["scheduled_at", "next_attempt_at", "occurrence", "idempotency_key", "updated_at"]
    )
    for reason in set(cancelled.values()):
        ids = [pk for pk, why in cancelled.items() if why == reason]
        EmailQueueItem.objects.filter(pk__in=ids, status=QueueStatus.PENDING).update(
            status=QueueStatus.CANCELLED, last_error=reason, updated_at=now
        )
    # The unique (enrollment, step, occurrence) is what makes a second reminder for one attempt impossible; under the
    # enrollment's lock a conflict cannot happen, and if it ever did, the reminder is there already.
    EmailQueueItem.objects.bulk_create(added, ignore_conflicts=True)
    if any(item.scheduled_at <= now for item in [*moved, *added]):
        transaction.on_commit(queue_process_enqueue)
    return len(moved) + len(cancelled) + len(added)


def _retime_plan(
    *, enrollment: Enrollment, context: dict[str, Any], now: datetime
) -> tuple[list[EmailQueueItem], dict[int, str], list[EmailQueueItem]]:
    """What re-timing changes, unsaved: the emails moved to their new time, those cancelled (id -> why) and the new
    reminders, for the steps anchored to Stripe's retries."""
    steps = sorted((step for step in enrollment.rule.steps.all() if not step.retired), key=lambda step: step.order)
    times = step_times(steps=steps, enrolled_at=enrollment.enrolled_at, context=context, now=now)
    items = list(enrollment.queue_items.select_for_update().filter(step__anchor__in=STRIPE_RETRY_ANCHORS))
    moved: list[EmailQueueItem] = []
    cancelled: dict[int, str] = {}
    added: list[EmailQueueItem] = []
    for step, due in zip(steps, times, strict=True):
        if step.anchor not in STRIPE_RETRY_ANCHORS:
            continue
        step_items = [item for item in items if item.step_id == step.pk]
        pending = [item for item in step_items if item.status == QueueStatus.PENDING]
        occurrence = retry_occurrence(context) if step.anchor == StepAnchor.BEFORE_NEXT_PAYMENT_ATTEMPT else ""
        if due is None or (step.anchor == StepAnchor.BEFORE_NEXT_PAYMENT_ATTEMPT and not occurrence):
            cancelled.update({item.pk: NO_RETRY_TO_REMIND_OF for item in pending})
            continue
        if step.anchor != StepAnchor.BEFORE_NEXT_PAYMENT_ATTEMPT:
            current = pending[0] if pending else None  # sent once per enrollment: only an unsent one moves
        else:
            current = next((item for item in step_items if item.occurrence == occurrence), None)
            if current is None and pending:
                # The reminder of an earlier attempt never went out: it becomes the reminder of this one. Pending
                # emails were never handed to the provider, so their key can still change.
                current = pending[0]
                current.occurrence = occurrence
                current.idempotency_key = queue_item_key(
                    enrollment_id=enrollment.pk, step_id=step.pk, occurrence=occurrence
                )
            if current is None and enrollment.customer.email:
                added.append(_queue_item(enrollment=enrollment, step=step, due=due, context=context))
        for item in pending:
            if item is not current:
                cancelled[item.pk] = f"Superseded by the reminder of {occurrence or 'the new attempt'}"
        if current is not None and current.status == QueueStatus.PENDING:
            current.scheduled_at = current.next_attempt_at = due
            current.updated_at = now
            moved.append(current)

    return moved, cancelled, added


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
    for enrollment in running:
        if event_exits(event=event, enrollment=enrollment):
            enrollment_exit(enrollment=enrollment, reason=f"{event.name} ({event.key})", by_event=event.name)
            exited.append(enrollment)
    return exited


def event_exits(*, event: DomainEvent, enrollment: Enrollment) -> bool:
    """Whether the event ends this running enrollment (its rule lists the event as an exit)."""
    if event.name not in (enrollment.rule.exit_events or []):
        return False
    subscription_id = event.payload.get("subscription_id") or ""
    other_subscription = (
        subscription_id and enrollment.subscription_id and subscription_id != enrollment.subscription_id
    )
    return not other_subscription or event.name in CUSTOMER_WIDE_EXIT_EVENTS


@transaction.atomic
def enrollment_exit(*, enrollment: Enrollment, reason: str, by_event: str = "") -> int:
    """Stop an enrollment and cancel its emails that have not been handed to the provider. Returns how many.
    `by_event`: the domain event that ended it, if one did (a comeback ends a campaign without a move to Churned)."""
    now = timezone.now()
    enrollment.status = EnrollmentStatus.EXITED
    enrollment.exit_reason = reason[:200]
    enrollment.exited_at = now
    enrollment.save(update_fields=["status", "exit_reason", "exited_at"])
    # Held emails of a paused rule (automations/rule_pause.py) are unsent too.
    cancelled = enrollment.queue_items.filter(status__in=[QueueStatus.PENDING, QueueStatus.PAUSED]).update(
        status=QueueStatus.CANCELLED, last_error=f"Enrollment exited: {reason}"[:2000], updated_at=now
    )
    if by_event == domain_events.CHECKOUT_COMPLETED:
        campaign_stage_on_purchase(enrollment=enrollment, reason=reason)
    elif by_event not in COMEBACK_EVENTS:
        campaign_stage_on_end(enrollment=enrollment, how=f"exited: {reason}")
    return cancelled


def enrollments_complete_finished(*, enrollment_ids: set[int]) -> int:
    """Mark enrollments completed once none of their emails is waiting any more."""
    if not enrollment_ids:
        return 0
    now = timezone.now()
    completed = (
        Enrollment.objects.filter(pk__in=enrollment_ids, status=EnrollmentStatus.ACTIVE)
        .exclude(queue_items__status__in=[QueueStatus.PENDING, QueueStatus.SENDING, QueueStatus.PAUSED])
        .update(status=EnrollmentStatus.COMPLETED, completed_at=now)
    )
    if completed:
        campaigns = Enrollment.objects.filter(
            pk__in=enrollment_ids,
            status=EnrollmentStatus.COMPLETED,
            completed_at=now,
            rule__moves_to_stage__in=list(CAMPAIGN_STAGES),
        ).select_related("rule")
        for enrollment in campaigns:
            campaign_stage_on_end(enrollment=enrollment, how="completed")
    return completed
