"""Stopping a rule, in the two ways staff mean it (docs/automations.md, "Stopping and pausing a rule").

- **Stop new enrollments** (`enabled` off): nobody new starts the sequence; customers already in it still get its
  emails.
- **Pause**: every pending email of the rule is held (status paused) and the queue sends none, whether it was
  pending when the rule was paused, queued while it is paused, or taken by a worker at that very moment.
  **Resume** releases the held emails in step order; one whose moment passed more than the rule's
  `resume_skip_after` ago is skipped with the reason, as is one whose sequence ended or whose step was retired.

How a pause and the queue meet: the pause locks the rule row (FOR UPDATE) and holds the rule's pending emails that
no worker has locked (SKIP LOCKED); a worker that has locked emails to send reads their rules FOR SHARE in the same
transaction (`rules_paused_locked`), so it waits for a pause being written and then sees it, and holds those emails
itself. Neither side waits for a lock the other holds while holding one the other wants: no deadlock.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from .models import AutomationRule, EmailQueueItem, EnrollmentStatus, QueueStatus, StepAnchor

PAUSED_NOTE = "Held: its rule is paused"
# Released emails that are overdue go out now, one after another in step order (the queue takes the oldest first).
RELEASE_SPACING = timedelta(milliseconds=1)


class RuleState:
    RUNNING = "Running"
    NO_NEW = "New enrollments stopped"
    PAUSED = "Paused"
    PAUSED_NO_NEW = "Paused, new enrollments stopped"


def rule_state(rule: AutomationRule) -> str:
    if rule.paused_at is not None:
        return RuleState.PAUSED_NO_NEW if not rule.enabled else RuleState.PAUSED
    return RuleState.RUNNING if rule.enabled else RuleState.NO_NEW


def rules_paused_locked(*, rule_ids: set[int]) -> set[int]:
    """Which of these rules are paused, read FOR SHARE (inside the queue's claiming transaction): a pause being
    written is waited for and then seen. Rules locked in id order, so two workers never lock them crosswise."""
    if not rule_ids:
        return set()
    if connection.vendor != "postgresql":  # the local run's SQLite: one writer at a time, no FOR SHARE
        return set(AutomationRule.objects.filter(pk__in=rule_ids, paused_at__isnull=False).values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, paused_at FROM automations_automationrule WHERE id = ANY(%s) ORDER BY id FOR SHARE",
            [sorted(rule_ids)],
        )
        return {rule_id for rule_id, paused_at in cursor.fetchall() if paused_at is not None}


@transaction.atomic
def rule_enrollments_set(*, rule_id: int, enabled: bool) -> bool:
    """Stop (or allow again) new enrollments. Returns whether anything changed."""
    return bool(AutomationRule.objects.filter(pk=rule_id).exclude(enabled=enabled).update(enabled=enabled))


@transaction.atomic
def rule_pause(*, rule_id: int, by: str, now: datetime | None = None) -> int | None:
    """Pause the rule and hold its pending emails. Returns how many were held here (a worker holding some at this
    moment holds the rest itself), or None when the rule was already paused."""
    now = now or timezone.now()
    rule = AutomationRule.objects.select_for_update().get(pk=rule_id)
    if rule.paused_at is not None:
        return None
    rule.paused_at, rule.paused_by = now, by[:150]
    rule.save(update_fields=["paused_at", "paused_by", "updated_at"])
    pending = (
        EmailQueueItem.objects.select_for_update(skip_locked=True)
        .filter(step__rule_id=rule_id, status=QueueStatus.PENDING)
        .values("pk")
    )
    return EmailQueueItem.objects.filter(pk__in=pending).update(
        status=QueueStatus.PAUSED, last_error=f"{PAUSED_NOTE} (by {by})"[:2000], updated_at=now
    )


@dataclass
class Resumed:
    released: int = 0
    skipped: int = 0


def stale_reason(item: EmailQueueItem, *, rule: AutomationRule, now: datetime) -> str | None:
    """Why a held email is no longer worth sending now (its sequence ended, its step was retired, the payment attempt
    it announced has passed, or it is later than the rule allows), or None. Shared with the release of emails blocked
    for an address that has since been corrected (automations/address_fix.py). `item` with enrollment and step."""
    if item.enrollment.status != EnrollmentStatus.ACTIVE:
        return f"Not sent: the sequence has {item.enrollment.get_status_display().lower()}"
    if item.step.retired:
        return "Not sent: its step was retired"
    if item.step.anchor == StepAnchor.BEFORE_NEXT_PAYMENT_ATTEMPT and item.scheduled_at + item.step.delay <= now:
        return "Not sent: the payment attempt it announced has passed"
    if now - item.scheduled_at > rule.resume_skip_after:
        return (
            f"Not sent: it was due {item.scheduled_at:%Y-%m-%d %H:%M} UTC, more than "
            f"{_words(rule.resume_skip_after)} ago (the rule's limit for late emails)"
        )
    return None


def _words(delay: timedelta) -> str:
    from .forms import format_delay  # the rule page's own wording of a delay

    return format_delay(delay)


@transaction.atomic
def rule_resume(*, rule_id: int, by: str, now: datetime | None = None) -> Resumed | None:
    """Resume the rule: release its held emails in step order, skipping (with the reason) those no longer worth
    sending. Returns the counts, or None when the rule was not paused."""
    now = now or timezone.now()
    rule = AutomationRule.objects.select_for_update().get(pk=rule_id)
    if rule.paused_at is None:
        return None
    rule.paused_at, rule.paused_by = None, ""
    rule.save(update_fields=["paused_at", "paused_by", "updated_at"])
    held = list(
        EmailQueueItem.objects.select_for_update(of=("self",))
        .filter(step__rule_id=rule_id, status=QueueStatus.PAUSED)
        .select_related("enrollment", "step")
        .order_by("step__order", "scheduled_at", "id")
    )
    outcome = Resumed()
    overdue = 0
    for item in held:
        reason = stale_reason(item, rule=rule, now=now)
        if reason:
            item.status, item.last_error = QueueStatus.CANCELLED, f"Skipped when the rule was resumed. {reason}"[:2000]
            outcome.skipped += 1
        else:
            item.status, item.last_error = QueueStatus.PENDING, ""
            if item.scheduled_at <= now:
                # In step order: an earlier step is always taken before a later one.
                item.next_attempt_at = now + overdue * RELEASE_SPACING
                overdue += 1
            else:
                item.next_attempt_at = item.scheduled_at
            outcome.released += 1
        item.updated_at = now
    EmailQueueItem.objects.bulk_update(held, ["status", "last_error", "next_attempt_at", "updated_at"])
    if overdue:
        from .drain_control import queue_process_enqueue

        transaction.on_commit(queue_process_enqueue)
    return outcome
