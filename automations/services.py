"""Writes of the automations app: enrollments, exits, queue items, suppressions, unsubscribes and tracking events.

Sending (claiming due items, calling the provider, recording the result) is in `automations.sending`.
"""

import functools
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from billing import selectors as billing_selectors
from customers import events as domain_events
from customers.lifecycle import CAMPAIGN_STAGES, COMEBACK_EVENTS, Stage, campaign_ended_key, campaign_reached_key
from customers.models import Customer, DomainEvent, TimelineEvent, TimelineSource
from customers.selectors import customer_get_by_email
from customers.services import customer_move_stage, normalize_email, timeline_event_record

from .models import (
    SOFT_BOUNCE_LIMIT,
    SOFT_BOUNCE_WINDOW,
    STRIPE_RETRY_ANCHORS,
    AutomationRule,
    AutomationStep,
    BounceType,
    EmailEvent,
    EmailEventType,
    EmailQueueItem,
    EmailTemplate,
    Enrollment,
    EnrollmentStatus,
    QueueStatus,
    ReentryPolicy,
    StaffTestSend,
    StepAnchor,
    Suppression,
    SuppressionReason,
)

logger = logging.getLogger(__name__)

# An exit event about another subscription ends an enrollment only if it is a new purchase: a customer who buys
# again leaves win-back whatever they bought, but a recovered payment on server B must not stop dunning for server A.
CUSTOMER_WIDE_EXIT_EVENTS = frozenset(
    {domain_events.SUBSCRIPTION_CREATED, domain_events.CHECKOUT_COMPLETED, domain_events.TRIAL_STARTED}
)

UNSUBSCRIBE_SALT = "automations.unsubscribe"  # the first links, which carried the address (still read)
UNSUBSCRIBE_LINK_SALT = "automations.unsubscribe.item"


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


# The last notice waits this long after the last retry Stripe announced, in case the failure that ends the retries
# never reaches us (a lost webhook the daily sync has not healed yet).
RETRIES_EXHAUSTED_FALLBACK = timedelta(days=3)


def step_times(
    *, steps: list[AutomationStep], enrolled_at: datetime, context: dict[str, Any], now: datetime | None = None
) -> list[datetime | None]:
    """When each step (in order) is due; None for a step that is not to be sent (a reminder of a retry that will not
    come). `context` is the enrollment's context: the triggering payload, updated by each later payment failure."""
    now = now or enrolled_at
    next_payment_attempt = _parse_time(context.get("next_payment_attempt"))
    # A payment.failed payload always names next_payment_attempt; null there means Stripe stopped retrying.
    retries_over = "next_payment_attempt" in context and next_payment_attempt is None
    last_attempt = _parse_time(context.get("last_announced_payment_attempt")) or next_payment_attempt
    times: list[datetime | None] = []
    previous = enrolled_at
    for step in steps:
        due: datetime | None
        if step.anchor == StepAnchor.PREVIOUS_STEP:
            due = previous + step.delay
        elif step.anchor == StepAnchor.NEXT_PAYMENT_ATTEMPT and next_payment_attempt:
            due = next_payment_attempt + step.delay
        elif step.anchor == StepAnchor.BEFORE_NEXT_PAYMENT_ATTEMPT and "next_payment_attempt" in context:
            # No reminder of an attempt that is not coming, or that is already past (a failure processed late).
            coming = next_payment_attempt is not None and next_payment_attempt > now
            due = max(next_payment_attempt - step.delay, now) if coming else None
        elif step.anchor == StepAnchor.RETRIES_EXHAUSTED and "next_payment_attempt" in context:
            if last_attempt is None:
                due = None  # Stripe never announced a retry (none configured): no "last retry failed" to tell
            elif retries_over:
                due = (_parse_time(context.get("retries_exhausted_at")) or now) + step.delay
            else:
                due = last_attempt + RETRIES_EXHAUSTED_FALLBACK + step.delay
        else:
            due = enrolled_at + step.delay
        times.append(due)
        previous = due or previous
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


def _retry_context(payload: dict[str, Any], *, now: datetime, occurred_at: datetime | None = None) -> dict[str, Any]:
    """What the payment.failed payload tells the retry anchors, with the moment Stripe's retries were seen to end and
    when the failure happened (to tell a late, older failure from a newer one)."""
    context = dict(payload)
    if payload.get("next_payment_attempt"):
        context["last_announced_payment_attempt"] = payload["next_payment_attempt"]
    elif "next_payment_attempt" in payload:
        context["retries_exhausted_at"] = now.isoformat()
    if occurred_at is not None and "next_payment_attempt" in payload:
        context["payment_failed_at"] = occurred_at.isoformat()
    return context


def retry_occurrence(context: dict[str, Any]) -> str:
    """Which payment attempt a reminder "before Stripe's next payment attempt" announces: "<invoice id>:attempt-<n>",
    n being Stripe's attempt_count + 1 (attempt_count counts the attempts made, the first one included:
    https://docs.stripe.com/api/invoices/object#invoice_object-attempt_count). Without an attempt_count, the announced
    time stands in ("retry-at-<unix time>"). Empty when no attempt is announced.

    It is the reminder's identity: a duplicate of the same failure names the same attempt, so it finds the reminder
    already there (EmailQueueItem's unique enrollment, step and occurrence) instead of adding one."""
    next_attempt = _parse_time(context.get("next_payment_attempt"))
    if next_attempt is None:
        return ""
    count = context.get("attempt_count")
    if isinstance(count, int) and not isinstance(count, bool) and count >= 1:
        attempt = f"attempt-{count + 1}"
    else:
        attempt = f"retry-at-{int(next_attempt.timestamp())}"
    invoice_id = context.get("invoice_id")
    return f"{invoice_id}:{attempt}" if isinstance(invoice_id, str) and invoice_id else attempt


def queue_item_key(*, enrollment_id: int, step_id: int, occurrence: str = "") -> str:
    """The email's idempotency key, from our ids (and for a repeating reminder, the attempt it announces). Resend gets
    it as the Idempotency-Key of an email sent alone."""
    key = f"email:enrollment-{enrollment_id}:step-{step_id}"
    return f"{key}:{occurrence}" if occurrence else key


def _failure_is_older(*, context: dict[str, Any], payload: dict[str, Any], occurred_at: datetime) -> bool:
    """Whether a payment failure is older than the one the enrollment already follows. Dispatch is at least once and
    in no guaranteed order: a late failure 2 must not move the reminders back from attempt 4 to attempt 3, nor undo
    the end of the retries. Within one invoice Stripe's attempt_count orders the failures; across invoices, when
    they happened."""
    same_invoice = (payload.get("invoice_id") or "") == (context.get("invoice_id") or "")
    new, known = payload.get("attempt_count"), context.get("attempt_count")
    if same_invoice and isinstance(new, int) and isinstance(known, int):
        return new < known
    known_at = _parse_time(context.get("payment_failed_at"))
    return not same_invoice and known_at is not None and occurred_at < known_at


# Triggers that are about a subscription which must still be alive when the subscriber runs.
_LIVE_SUBSCRIPTION_TRIGGERS = frozenset(
    {
        domain_events.SUBSCRIPTION_CREATED,
        domain_events.SUBSCRIPTION_CANCEL_SCHEDULED,
        domain_events.SUBSCRIPTION_TRIAL_ENDING,
        domain_events.PAYMENT_FAILED,
    }
)


def trigger_stale_reason(*, event: DomainEvent) -> str:
    """Why the event no longer holds by the CRM's current state ('' when it still does).

    Events are dispatched after their commit and in no guaranteed order, so a payment failure can reach automations
    after the subscription's cancellation, or a subscription.created after its own cancellation. The subscription
    row is locked (within the caller's transaction): a cancellation being applied right now either committed before
    (and is seen here) or waits until this enrollment is committed (and then exits it).
    """
    subscription_id = trigger_subscription_id(event)
    if not subscription_id:
        return ""
    subscription = billing_selectors.subscription_get_for_update(stripe_subscription_id=subscription_id)
    invoice_id = event.payload.get("invoice_id") or ""
    recovered = (
        event.name == domain_events.PAYMENT_FAILED
        and bool(invoice_id)
        and DomainEvent.objects.filter(key=invoice_recovered_key(invoice_id)).exists()
    )
    return stale_reason(event=event, subscription=subscription, invoice_recovered=recovered)


def trigger_subscription_id(event: DomainEvent) -> str:
    """The subscription whose state decides whether the event's trigger still holds ('' for none)."""
    return event.payload.get("subscription_id") or "" if event.name in _LIVE_SUBSCRIPTION_TRIGGERS else ""


def invoice_recovered_key(invoice_id: str) -> str:
    return f"invoice:{invoice_id}:payment-recovered"  # billing's key of payment.recovered


def stale_reason(*, event: DomainEvent, subscription, invoice_recovered: bool) -> str:
    """trigger_stale_reason, given the event's subscription (locked by the caller; None if the CRM does not know it)
    and whether the event's invoice has been paid since."""
    if subscription is None or not trigger_subscription_id(event):
        return ""  # the CRM does not know it (yet): nothing says the trigger is stale
    subscription_id = subscription.stripe_subscription_id
    if subscription.status in billing_selectors.ENDED_STATUSES:
        return f"subscription {subscription_id} has ended ({subscription.status})"
    if event.name == domain_events.PAYMENT_FAILED:
        if invoice_recovered:
            return f"invoice {event.payload.get('invoice_id')} has been paid since"
    elif event.name == domain_events.SUBSCRIPTION_CANCEL_SCHEDULED and not (
        subscription.cancel_at_period_end or subscription.cancel_at
    ):
        return "the cancellation has been withdrawn since"
    elif event.name == domain_events.SUBSCRIPTION_TRIAL_ENDING and subscription.status != "trialing":
        return f"the trial is over ({subscription.status})"
    return ""


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
    if _failure_already_followed(rule=rule, event=event):
        logger.info("Rule %s not started for %s: a later failure of the invoice was followed", rule.name, event.key)
        return None
    if not customer.email:
        _enrollment_skipped_note(rule=rule, event=event)
        return None
    now = timezone.now()
    context = _retry_context(event.payload, now=now, occurred_at=event.occurred_at)
    try:
        with transaction.atomic():
            enrollment = Enrollment.objects.create(
                rule=rule,
                customer=customer,
                scope_key=_scope_key(rule=rule, event=event),
                subscription_id=subscription_id,
                trigger_event=event,
                context=context,
                enrolled_at=now,
            )
    except IntegrityError:
        # The re-entry policy, enforced by the unique constraints: already enrolled in this scope (or a second
        # dispatch of the same event won the race).
        return None
    _enrollment_queue_steps(enrollment=enrollment, context=context, now=now)
    return enrollment


def _failure_already_followed(*, rule: AutomationRule, event: DomainEvent) -> bool:
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


def _enrollment_skipped_note(*, rule: AutomationRule, event: DomainEvent) -> None:
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


def _enrollment_queue_steps(*, enrollment: Enrollment, context: dict[str, Any], now: datetime) -> None:
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
    Resend may have accepted), a new one is queued for the new attempt, under its own key. An older failure arriving
    late, or the same failure again, changes nothing (_failure_is_older, and the unique occurrence per step)."""
    if "next_payment_attempt" not in event.payload:
        return 0
    enrollment = Enrollment.objects.select_for_update(of=("self",)).select_related("customer").get(pk=enrollment.pk)
    if enrollment.status != EnrollmentStatus.ACTIVE:
        return 0
    if _failure_is_older(context=enrollment.context, payload=event.payload, occurred_at=event.occurred_at):
        logger.info("Enrollment %s: %s is older than the failure it follows; not re-timed", enrollment.pk, event.key)
        return 0
    now = timezone.now()
    context = {**enrollment.context, **_retry_context(event.payload, now=now, occurred_at=event.occurred_at)}
    known = enrollment.context
    ended_again = event.payload["next_payment_attempt"] is None and known.get("next_payment_attempt", 0) is None
    if ended_again and known.get("retries_exhausted_at"):
        # The end of the retries seen again (a repeated event): the last notice stays timed to when it was first seen.
        context["retries_exhausted_at"] = enrollment.context["retries_exhausted_at"]
    enrollment.context = context
    enrollment.save(update_fields=["context"])

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
                # emails were never handed to Resend, so their key can still change.
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


# --- campaigns: the stage moves of re-engagement rules (customers/lifecycle.py, "Churned -> Win-back -> Churned") ---


def campaign_stage_on_sent(*, items: list[EmailQueueItem], sent_at: datetime) -> int:
    """Emails just went out (in the transaction that records the send): each campaign enrollment that reached its
    customer moves them from Churned to the rule's stage, once per enrollment. `items` have `step.rule` loaded.
    Returns how many customers moved."""
    campaign = [item for item in items if item.step.rule.moves_to_stage]
    if not campaign:
        return 0
    # Locked: a concurrent exit has either committed (the campaign is over: nobody moves) or waits for this one.
    running = set(
        Enrollment.objects.select_for_update(of=("self",))
        .filter(pk__in={item.enrollment_id for item in campaign}, status=EnrollmentStatus.ACTIVE)
        .values_list("pk", flat=True)
    )
    moved = 0
    for item in sorted(campaign, key=lambda item: (item.customer_id, item.enrollment_id)):  # one lock order
        stage = item.step.rule.moves_to_stage
        if item.enrollment_id not in running:
            continue
        transition = customer_move_stage(
            customer=item.customer,
            to_stage=stage,
            from_stage=CAMPAIGN_STAGES[stage],
            cause=f"first {item.step.rule.name} email sent: {item.step.template.name}",
            occurred_at=sent_at,
            source_key=campaign_reached_key(enrollment_id=item.enrollment_id),
        )
        moved += transition is not None
    return moved


def campaign_stage_on_end(*, enrollment: Enrollment, how: str) -> bool:
    """A campaign enrollment ended (`how`: "completed" or "exited: <reason>") without a comeback: its customer, if
    still in the rule's stage with no other campaign running, moves back to where campaigns start. Returns whether
    they moved."""
    stage = enrollment.rule.moves_to_stage
    return bool(stage) and _campaign_stage_leave(enrollment=enrollment, stage=stage, how=how)


def campaign_stage_on_purchase(*, enrollment: Enrollment, reason: str) -> bool:
    """A campaign ended because the customer bought something (a checkout). A new subscription moves them on through
    billing as usual, but a purchase without one (a VIP reservation) would leave them in the campaign's stage with no
    campaign: a customer still there moves to Purchase. Returns whether they moved."""
    stage = enrollment.rule.moves_to_stage
    if not stage:
        return False
    transition = customer_move_stage(
        customer=enrollment.customer,
        to_stage=Stage.PURCHASE,
        from_stage=stage,
        cause=f"came back during {enrollment.rule.name}: {reason}",
        occurred_at=enrollment.exited_at,
        source_key=f"campaign:enrollment-{enrollment.pk}:purchase",
    )
    return transition is not None


@transaction.atomic
def _campaign_stage_leave(*, enrollment: Enrollment, stage: str, how: str) -> bool:
    # The customer's row first: two campaigns of one customer ending at once see each other's end in turn.
    customer = Customer.objects.select_for_update().get(pk=enrollment.customer_id)
    if customer.lifecycle_stage != stage:
        return False
    others = Enrollment.objects.filter(
        customer=customer, status=EnrollmentStatus.ACTIVE, rule__moves_to_stage=stage
    ).exclude(pk=enrollment.pk)
    if others.exists():
        return False
    ended_at = enrollment.completed_at or enrollment.exited_at or timezone.now()
    key = campaign_ended_key(enrollment_id=enrollment.pk)
    transition = customer_move_stage(
        customer=customer,
        to_stage=CAMPAIGN_STAGES[stage],
        from_stage=stage,
        cause=f"{enrollment.rule.name} ended without a return ({how})",
        occurred_at=ended_at,
        source_key=key,
    )
    if transition is None:
        return False
    # The fact behind this move is the campaign's end, which nothing else puts on the timeline.
    timeline_event_record(
        customer=customer,
        source=TimelineSource.EMAIL,
        source_key=key,
        kind="lifecycle.campaign_ended",
        occurred_at=ended_at,
        summary=f"{enrollment.rule.name} ended ({how}) without a new subscription: back to "
        f"{transition.get_to_stage_display()}",
        payload={"enrollment_id": enrollment.pk, "rule_id": enrollment.rule_id},
        object_type="automations.enrollment",
        object_id=str(enrollment.pk),
    )
    return True


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
    count = (
        EmailQueueItem.objects.filter(pk__in=item_ids, status=QueueStatus.FAILED)
        .exclude(step__retired=True)
        .update(status=QueueStatus.PENDING, attempts=0, next_attempt_at=now, last_error="", batch=None, updated_at=now)
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


def _unsubscribe_signer() -> signing.Signer:
    # Signed with SECRET_KEY, checked against SECRET_KEY_FALLBACKS too: rotating the key keeps sent links working.
    return signing.Signer(salt=UNSUBSCRIBE_LINK_SALT)


def unsubscribe_token_make(*, queue_item_id: int) -> str:
    """The token of one email's unsubscribe link: that email's id, signed. Opaque (no address in it), the same every
    time it is made (a batch re-sent under its idempotency key carries the same bytes) and without expiry (a link in
    an old email must keep working)."""
    return _unsubscribe_signer().sign(signing.b62_encode(queue_item_id))


def unsubscribe_token_read(*, token: str) -> dict[str, Any] | None:
    """{"e": address, "q": queue item id or None} for a token of ours, else None.

    Tokens sent before the links became opaque (signing.dumps of {"e": address, "q": id}, salt UNSUBSCRIBE_SALT)
    are in emails already delivered and keep working."""
    try:
        item_id = signing.b62_decode(_unsubscribe_signer().unsign(token))
    except (signing.BadSignature, ValueError):
        pass
    else:
        recipient = EmailQueueItem.objects.filter(pk=item_id).values_list("recipient", flat=True).first()
        return {"e": normalize_email(recipient), "q": item_id} if recipient else None
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except (signing.BadSignature, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("e"), str) and data["e"] else None


def unsubscribe_url(*, queue_item_id: int | None = None, email: str = "") -> str:
    """The unsubscribe link of one email. Without a queue item (a preview, a test send to staff) the link is a
    placeholder that unsubscribes nobody: a staff member clicking it in a test email must not unsubscribe the
    customer whose data filled the preview. `email` is accepted for callers' convenience and never put in the link."""
    token = unsubscribe_token_make(queue_item_id=queue_item_id) if queue_item_id is not None else "preview"
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
    item = (
        EmailQueueItem.objects.select_related("customer").filter(pk=data.get("q"), recipient__iexact=email).first()
        if data.get("q")
        else None
    )
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

# Resend's `email.opened` carries no user agent and no IP (https://resend.com/docs/webhooks/emails/opened), so a
# privacy proxy's fetch (Apple Mail Privacy Protection, Yahoo's proxy, security scanners) cannot be told from a
# person's by who fetched. Only timing hints at it: an open within AUTOMATIONS_MACHINE_OPEN_SECONDS of delivery is
# a machine open. Later opens may still be proxies; clicks are the reliable engagement figure.

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
) -> EmailEvent | None:
    """Store one tracking event (once per provider event id) and apply it. None when it was a repeat.

    `bounce_type` is Resend's bounce.type for bounces; `detail` what Resend said (bounce, failure or suppression
    message), kept on the email."""
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

    if _is_permanent_bounce(event) and recipient:
        suppression_add(
            email=recipient, reason=SuppressionReason.HARD_BOUNCE, queue_item=item, note=detail or "Permanent bounce"
        )
    elif event_type == EmailEventType.BOUNCED and recipient:
        _soft_bounces_suppress(recipient=recipient, item=item)
    elif event_type == EmailEventType.COMPLAINED and recipient:
        suppression_add(email=recipient, reason=SuppressionReason.COMPLAINT, queue_item=item)

    if item is None:
        logger.info("Tracking event %s for a message not (yet) known: %s", provider_event_id, provider_message_id)
        return event
    _email_event_apply(event=event, item=item)
    return event


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


def _email_event_apply(*, event: EmailEvent, item: EmailQueueItem) -> None:
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
    summaries = {
        EmailEventType.OPENED: f"opened{machine}",
        EmailEventType.CLICKED: f"clicked {event.url}",
        EmailEventType.FAILED: "failed at Resend",
        EmailEventType.SUPPRESSED: "not sent: Resend suppressed the address",
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
        source_key=f"resend-event:{event.provider_event_id}",
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
                opened_at=event.occurred_at, delivered_at=item.delivered_at or item.sent_at
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


# --- steps and templates with history -----------------------------------------------------------------------------


def step_has_history(*, step: AutomationStep) -> bool:
    """Whether any email was ever queued for the step: such a step is retired, never deleted (PROTECT)."""
    return step.pk is not None and EmailQueueItem.objects.filter(step=step).exists()


@transaction.atomic
def step_retire(*, step_id: int) -> int:
    """Retire a step: no new enrollment queues it and its pending emails are cancelled. Returns how many."""
    AutomationStep.objects.filter(pk=step_id).update(retired=True)
    return EmailQueueItem.objects.filter(step_id=step_id, status=QueueStatus.PENDING).update(
        status=QueueStatus.CANCELLED, last_error="Step retired", updated_at=timezone.now()
    )


# --- "send me a test" -----------------------------------------------------------------------------------------------

TEST_SENDS_PER_MINUTE = 5


@transaction.atomic
def staff_test_send_reserve(*, user, template: EmailTemplate) -> StaffTestSend | None:
    """Record a test send for `user`, or None when they already sent TEST_SENDS_PER_MINUTE in the last minute.

    Counted in the database under a lock on the user's row, so the limit holds across web workers and concurrent
    requests (a per-process cache would let each worker allow its own five)."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    now = timezone.now()
    recent = StaffTestSend.objects.filter(user=user, sent_at__gt=now - timedelta(minutes=1)).count()
    if recent >= TEST_SENDS_PER_MINUTE:
        return None
    return StaffTestSend.objects.create(user=user, template=template, recipient=user.email, sent_at=now)


def staff_test_send_failed(*, test_send: StaffTestSend, error: str) -> None:
    StaffTestSend.objects.filter(pk=test_send.pk).update(error=error[:2000])


# --- staff actions on rules and enrollments (admin and API) ----------------------------------------------------------


class EnrollmentRefused(Exception):
    """A hand enrollment that the rule's state or its re-entry policy does not allow."""


@transaction.atomic
def rule_set_enabled(*, rule_id: int, enabled: bool) -> AutomationRule:
    """Turn a rule on or off. Off stops new enrollments; running ones carry on (exit them to stop their emails)."""
    rule = AutomationRule.objects.select_for_update().get(pk=rule_id)
    if rule.enabled != enabled:
        rule.enabled = enabled
        rule.save(update_fields=["enabled", "updated_at"])
    return rule


@transaction.atomic
def enrollment_start_by_hand(*, rule: AutomationRule, customer: Customer, reason: str) -> Enrollment:
    """Enroll a customer in a rule at a staff member's (or a tool's) request, without a triggering event.

    The rule's conditions are not applied (the person asking decided), but its re-entry policy is: once per customer
    means once, and a sequence never runs twice at once for the customer. Raises EnrollmentRefused otherwise.
    """
    if not rule.enabled:
        raise EnrollmentRefused(f"Rule {rule.name!r} is disabled.")
    if not customer.email:
        raise EnrollmentRefused("The customer has no email address.")
    now = timezone.now()
    scope_key = "customer" if rule.reentry == ReentryPolicy.ONCE_PER_CUSTOMER else f"manual:{now.isoformat()}"
    try:
        with transaction.atomic():
            enrollment = Enrollment.objects.create(
                rule=rule,
                customer=customer,
                scope_key=scope_key,
                context={"enrolled_by": reason[:200]},
                enrolled_at=now,
            )
    except IntegrityError:
        raise EnrollmentRefused(f"{customer} is already enrolled in {rule.name!r}.") from None
    _enrollment_queue_steps(enrollment=enrollment, context={}, now=now)
    return enrollment
