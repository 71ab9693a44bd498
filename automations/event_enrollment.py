"""What a batch of domain events does to enrollments: exits, then starts, for all the batch's customers at once.

The dispatcher (customers.events) hands automations a drain's batch of events in one transaction. Handling them one
by one cost about twenty queries per event (the rules, the customer's running enrollments, the subscription's lock,
the enrollment, its emails, a savepoint around each), and dispatch, not sending, was what limited a Stripe burst.
Here the batch is split into waves in which each customer appears at most once (a customer's second event of the
batch is in the second wave), so one customer's events are still applied in their order; each wave loads what the
decisions need in bulk (running enrollments, locked; subscriptions, locked; enrollments already in the same scope)
and writes the new enrollments and their emails with one INSERT each. A batch of subscription.created events thus
costs the same number of queries whatever its size (tests/automations/test_dispatch_batch.py).

The decisions are those of `services.enrollment_start` and `services.enrollments_exit_for_event`, made on the same
state: the trigger is re-checked under the subscription's row lock, the re-entry policy and "one running copy per
subscription" are still enforced by the unique constraints (a conflict with a concurrent dispatch falls back to
starting the wave's enrollments one by one, where the constraints decide each). What happens rarely (an exit, a
re-timed dunning sequence, a customer without an email address, an address that arrives) goes through the
one-event services.
"""

import logging
from collections import defaultdict
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import selectors as billing_selectors
from customers import events as domain_events
from customers.models import DomainEvent

from .drain_control import queue_process_enqueue
from .models import AutomationRule, EmailQueueItem, Enrollment, EnrollmentStatus
from .services.enrollment_policy import (
    enrollment_scope_key,
    invoice_recovered_key,
    retry_context,
    rule_matches,
    stale_reason,
    trigger_subscription_id,
)
from .services.enrollments import (
    enrollment_exit,
    enrollment_queue_items_build,
    enrollment_retime,
    enrollment_skipped_note,
    enrollment_start,
    enrollments_start_skipped,
    event_exits,
    failure_already_followed,
)

logger = logging.getLogger(__name__)


@transaction.atomic
def enrollments_update_for_events(*, events: list[DomainEvent]) -> None:
    """Apply a batch of domain events (in dispatch order) to enrollments: the same result as exits then starts for
    each event in turn. Safe to run twice for the same events."""
    rules_by_trigger: dict[str, list[AutomationRule]] = defaultdict(list)
    for rule in AutomationRule.objects.filter(enabled=True).prefetch_related("steps"):
        rules_by_trigger[rule.trigger].append(rule)
    for wave in _waves(events):
        _wave_apply(events=wave, rules_by_trigger=rules_by_trigger)


def _waves(events: list[DomainEvent]) -> list[list[DomainEvent]]:
    """The events in waves with each customer at most once per wave, each customer's events in their order."""
    waves: list[list[DomainEvent]] = []
    seen: dict[int, int] = defaultdict(int)
    for event in events:
        index = seen[event.customer_id]
        seen[event.customer_id] += 1
        if index == len(waves):
            waves.append([])
        waves[index].append(event)
    return waves


def _wave_apply(*, events: list[DomainEvent], rules_by_trigger: dict[str, list[AutomationRule]]) -> None:
    running: dict[int, list[Enrollment]] = defaultdict(list)
    for enrollment in (
        Enrollment.objects.select_for_update(of=("self",))
        .select_related("rule")
        .filter(customer_id__in={event.customer_id for event in events}, status=EnrollmentStatus.ACTIVE)
        .order_by("pk")
    ):
        running[enrollment.customer_id].append(enrollment)

    # Exits first: a new subscription ends win-back before it can start anything else.
    for event in events:
        for enrollment in list(running[event.customer_id]):
            if event_exits(event=event, enrollment=enrollment):
                enrollment_exit(enrollment=enrollment, reason=f"{event.name} ({event.key})", by_event=event.name)
                running[event.customer_id].remove(enrollment)

    candidates = [
        (rule, event)
        for event in events
        for rule in rules_by_trigger.get(event.name, [])
        if rule_matches(rule=rule, customer=event.customer, payload=event.payload)
    ]
    if candidates:
        _starts(candidates=candidates, running=running)

    for event in events:
        if event.name == domain_events.CUSTOMER_EMAIL_ADDED:
            enrollments_start_skipped(customer=event.customer)


def _stale_reasons(events: list[DomainEvent]) -> dict[int, str]:
    """trigger_stale_reason for many events: their subscriptions locked with one query, paid invoices looked up
    with one more."""
    subscriptions = billing_selectors.subscriptions_get_for_update(
        stripe_subscription_ids=[sid for sid in map(trigger_subscription_id, events) if sid]
    )
    invoice_keys = {
        invoice_recovered_key(event.payload["invoice_id"])
        for event in events
        if event.name == domain_events.PAYMENT_FAILED and event.payload.get("invoice_id")
    }
    recovered = (
        set(DomainEvent.objects.filter(key__in=invoice_keys).values_list("key", flat=True)) if invoice_keys else set()
    )
    return {
        event.pk: stale_reason(
            event=event,
            subscription=subscriptions.get(trigger_subscription_id(event)),
            invoice_recovered=invoice_recovered_key(event.payload.get("invoice_id") or "") in recovered,
        )
        for event in events
    }


def _starts(*, candidates: list[tuple[AutomationRule, DomainEvent]], running: dict[int, list[Enrollment]]) -> None:
    now = timezone.now()
    to_start = _startable(candidates=candidates, running=running)
    new = _new_enrollments(to_start, now=now) if to_start else []
    if not new:
        return
    try:
        with transaction.atomic():
            Enrollment.objects.bulk_create([enrollment for enrollment, _ in new])
    except IntegrityError:
        # A concurrent dispatch got there between our check and our insert: one by one, the constraints decide each.
        for enrollment, _ in new:
            enrollment_start(rule=enrollment.rule, event=enrollment.trigger_event)
        return

    items: list[EmailQueueItem] = []
    empty: list[int] = []
    for enrollment, context in new:
        built = enrollment_queue_items_build(enrollment=enrollment, context=context, now=now)
        items.extend(built)
        if not built:
            empty.append(enrollment.pk)
    EmailQueueItem.objects.bulk_create(items)
    if empty:
        Enrollment.objects.filter(pk__in=empty).update(status=EnrollmentStatus.COMPLETED, completed_at=now)
    if any(item.scheduled_at <= now for item in items):
        # A "send now" step should not wait for the next scheduled queue run.
        transaction.on_commit(queue_process_enqueue)


def _startable(
    *, candidates: list[tuple[AutomationRule, DomainEvent]], running: dict[int, list[Enrollment]]
) -> list[tuple[AutomationRule, DomainEvent]]:
    """The (rule, event) pairs that may start an enrollment: not stale, no running copy (re-timed instead), no later
    failure followed already, and a customer with an email address (noted on the timeline otherwise)."""
    stale = _stale_reasons(list({event.pk: event for _, event in candidates}.values()))
    to_start: list[tuple[AutomationRule, DomainEvent]] = []
    for rule, event in candidates:
        if stale[event.pk]:
            logger.info("Rule %s not started for %s: %s", rule.name, event.key, stale[event.pk])
            continue
        subscription_id = event.payload.get("subscription_id") or ""
        copy = next(
            (
                enrollment
                for enrollment in running[event.customer_id]
                if enrollment.rule_id == rule.pk and enrollment.subscription_id == subscription_id
            ),
            None,
        )
        if copy is not None:
            if copy.trigger_event_id != event.pk:
                # Stripe retried the invoice and failed again: the sequence keeps running, timed to the new attempt.
                enrollment_retime(enrollment=copy, event=event)
            continue
        if failure_already_followed(rule=rule, event=event):
            logger.info("Rule %s not started for %s: a later failure of the invoice was followed", rule.name, event.key)
            continue
        if not event.customer.email:
            enrollment_skipped_note(rule=rule, event=event)
            continue
        to_start.append((rule, event))
    return to_start


def _new_enrollments(
    to_start: list[tuple[AutomationRule, DomainEvent]], *, now
) -> list[tuple[Enrollment, dict[str, Any]]]:
    """Unsaved enrollments (with their context) for the pairs whose scope is free under the re-entry policy."""
    # The re-entry policy: already enrolled in this scope (an earlier event, or a first dispatch of this one).
    scopes = {(rule.pk, event.customer_id, enrollment_scope_key(rule=rule, event=event)) for rule, event in to_start}
    taken = set(
        Enrollment.objects.filter(
            rule_id__in={scope[0] for scope in scopes},
            customer_id__in={scope[1] for scope in scopes},
            scope_key__in={scope[2] for scope in scopes},
        ).values_list("rule_id", "customer_id", "scope_key")
    )
    new: list[tuple[Enrollment, dict[str, Any]]] = []
    for rule, event in to_start:
        scope = enrollment_scope_key(rule=rule, event=event)
        if (rule.pk, event.customer_id, scope) in taken:
            continue
        context = retry_context(event.payload, now=now, occurred_at=event.occurred_at)
        enrollment = Enrollment(
            rule=rule,
            customer=event.customer,
            scope_key=scope,
            subscription_id=event.payload.get("subscription_id") or "",
            trigger_event=event,
            context=context,
            enrolled_at=now,
        )
        new.append((enrollment, context))
    return new
