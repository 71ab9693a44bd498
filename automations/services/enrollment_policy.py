"""Whether a rule applies to an event, the scope an enrollment is unique in, and when its steps fall due.

Pure decisions over a rule, an event and its payload (Stripe's retry schedule for dunning), used by the enrollment
writes (services/enrollments.py) and the batched dispatch (automations/event_enrollment.py).
"""

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from billing import selectors as billing_selectors
from customers import events as domain_events
from customers.models import Customer, DomainEvent

from ..models import (
    AutomationRule,
    AutomationStep,
    ReentryPolicy,
    StepAnchor,
)

logger = logging.getLogger(__name__)


def rule_matches(*, rule: AutomationRule, customer: Customer, payload: dict[str, Any]) -> bool:
    if rule.trigger == domain_events.PAYMENT_FAILED and payload.get("dunning_holdout"):
        # The dunning holdout (billing/services/payment_failures.py): this invoice gets no dunning email at all, so
        # its recovery measures what Stripe's retries alone recover.
        return False
    if rule.condition_product_ids and payload.get("product_id") not in rule.condition_product_ids:
        return False
    if rule.condition_lifecycle_stages and customer.lifecycle_stage not in rule.condition_lifecycle_stages:
        return False
    return rule.condition_vip is None or customer.vip_status == rule.condition_vip


def enrollment_scope_key(*, rule: AutomationRule, event: DomainEvent) -> str:
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


def retry_context(payload: dict[str, Any], *, now: datetime, occurred_at: datetime | None = None) -> dict[str, Any]:
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
    """The email's idempotency key, from our ids (and for a repeating reminder, the attempt it announces). The
    provider gets it as the idempotency key of an email sent alone."""
    key = f"email:enrollment-{enrollment_id}:step-{step_id}"
    return f"{key}:{occurrence}" if occurrence else key


def failure_is_older(*, context: dict[str, Any], payload: dict[str, Any], occurred_at: datetime) -> bool:
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
        domain_events.CARD_EXPIRING,
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
    elif event.name == domain_events.CARD_EXPIRING and (subscription.cancel_at_period_end or subscription.cancel_at):
        return "the subscription will not renew (a cancellation is scheduled)"
    return ""
