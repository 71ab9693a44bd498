"""After staff corrected a customer's address: the emails blocked for the old one that are still current go out to
the new one (docs/automations.md, "Blocked and paused emails").

A suppression belongs to an address, not to a customer: a hard bounce of the old address says nothing about the new
one. Emails still pending need nothing (the queue sends a pending email to the customer's current address); this
releases the emails the queue already refused (status "Blocked"), when

- the block was the old address (the new one is not suppressed, and a marketing email still has consent), and
- the email is still current (automations.rule_pause.stale_reason: its sequence is running, its step not retired,
  the payment attempt it announced has not passed, and it is not later than the rule's limit for late emails), and
- no later email of the same step has been queued for the same sequence since (a newer reminder replaces it).

Released emails go out in step order, to the new address; a paused rule holds them. The others stay blocked, and
their reason says why they were not sent.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .email_state import item_block_reason, suppressions_by_address
from .models import EmailQueueItem, QueueStatus
from .rule_pause import PAUSED_NOTE, RELEASE_SPACING, stale_reason


@dataclass
class Released:
    released: int = 0
    left_blocked: int = 0


def _superseded(item: EmailQueueItem, items: list[EmailQueueItem]) -> bool:
    return any(
        other.enrollment_id == item.enrollment_id
        and other.step_id == item.step_id
        and (other.scheduled_at, other.pk) > (item.scheduled_at, item.pk)
        for other in items
    )


@transaction.atomic
def blocked_emails_release(*, customer_id: int, now: datetime | None = None) -> Released:
    """Release the customer's blocked emails that are still current to their current address (call after the
    address changed, in the same transaction)."""
    now = now or timezone.now()
    items = list(
        EmailQueueItem.objects.select_for_update(of=("self",))
        .filter(customer_id=customer_id)
        .exclude(status__in=[QueueStatus.SENT, QueueStatus.UNCONFIRMED])
        .select_related("customer", "enrollment", "step__template", "step__rule")
        .order_by("step__order", "scheduled_at", "id")
    )
    blocked = [item for item in items if item.status == QueueStatus.SUPPRESSED]
    if not blocked:
        return Released()
    customer = blocked[0].customer
    reasons = suppressions_by_address([customer.email]).get(customer.email, set())
    outcome = Released()
    due_now = 0
    changed = []
    for item in blocked:
        if item_block_reason(item, reasons):
            outcome.left_blocked += 1  # still blocked for the new address (or no consent): the reason stands
            continue
        why = stale_reason(item, rule=item.step.rule, now=now)
        if why is None and _superseded(item, items):
            why = "Not sent: a later email of the same step was queued since"
        if why:
            item.last_error = f"{item.last_error} — not re-sent after the address was corrected. {why}"[:2000]
            outcome.left_blocked += 1
        else:
            paused = item.step.rule.paused_at is not None
            item.status = QueueStatus.PAUSED if paused else QueueStatus.PENDING
            item.last_error = PAUSED_NOTE if paused else ""
            item.recipient = customer.email
            item.next_attempt_at = max(item.scheduled_at, now + due_now * RELEASE_SPACING)
            due_now += 1
            outcome.released += 1
        item.updated_at = now
        changed.append(item)
    EmailQueueItem.objects.bulk_update(changed, ["status", "last_error", "recipient", "next_attempt_at", "updated_at"])
    if outcome.released:
        from .drain_control import queue_process_enqueue

        transaction.on_commit(queue_process_enqueue)
    return outcome
