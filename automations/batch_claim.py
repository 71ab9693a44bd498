"""Claiming due emails into batches: `SELECT ... FOR UPDATE SKIP LOCKED`, so two workers never take the same email.

Before any call to the provider, the claimed emails are rendered and written into an `EmailBatch` row together with
the idempotency key of the call, and the emails are marked `sending`; that row is committed first. The stored
messages are the request body of every attempt of that batch. One bad email (template error, invalid address) fails
alone while it is being claimed and never reaches a batch. docs/automations.md has the long version.
"""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from jinja2 import TemplateError

from .email_state import item_block_reason
from .installation import provider_idempotency_key
from .models import (
    BatchStatus,
    EmailBatch,
    EmailQueueItem,
    EnrollmentStatus,
    QueueStatus,
    Suppression,
)
from .queue_messages import message_for, subscription_contexts
from .render_context import links_context
from .rule_pause import PAUSED_NOTE, rules_paused_locked
from .send_gates import send_gate_pass

logger = logging.getLogger(__name__)


@dataclass
class DrainResult:
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    cancelled: int = 0
    batches: int = 0
    rate_limited: int = 0
    retries: int = 0
    splits: int = 0
    unconfirmed: int = 0
    waited_seconds: float = 0.0
    paused: str = ""  # the cause, while sending is paused by a configuration error
    touched_enrollments: set[int] = field(default_factory=set)

    def add(self, other: "DrainResult") -> None:
        for name in ("sent", "failed", "suppressed", "cancelled", "batches", "rate_limited", "retries", "splits"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.unconfirmed += other.unconfirmed
        self.waited_seconds += other.waited_seconds
        self.paused = other.paused
        self.touched_enrollments |= other.touched_enrollments


def batch_claim_in_flight(*, worker: str) -> EmailBatch | None:
    """A batch whose lease ran out: a retry that is due, or a batch whose worker died mid-call."""
    now = timezone.now()
    with transaction.atomic():
        batch = (
            EmailBatch.objects.select_for_update(skip_locked=True)
            .filter(status=BatchStatus.SENDING, lease_expires_at__lte=now)
            .order_by("lease_expires_at")
            .first()
        )
        if batch is None:
            return None
        if batch.call_in_progress:
            batch.possibly_accepted = True  # its worker died during the call
        if not batch.possibly_accepted:
            batch = _batch_prune_ended(batch, now=now)
            if batch is None:
                return None
        batch.lease_expires_at = now + timedelta(seconds=settings.AUTOMATIONS_LEASE_SECONDS)
        batch.worker = worker
        batch.call_in_progress = True
        batch.first_called_at = batch.first_called_at or now
        batch.save(
            update_fields=["lease_expires_at", "worker", "call_in_progress", "possibly_accepted", "first_called_at"]
        )
    return batch


def _batch_prune_ended(batch: EmailBatch, *, now) -> EmailBatch | None:
    """Take emails whose sequence ended (payment recovered during a 429 or 5xx backoff) or whose rule was paused
    while the batch waited out of a batch the provider has certainly not accepted. Returns the batch to send: this
    one, a smaller replacement under a new key, or None when nothing is left."""
    item_ids = [entry["item_id"] for entry in batch.messages]
    rows = list(EmailQueueItem.objects.filter(pk__in=item_ids).values_list("pk", "enrollment__status", "step__rule_id"))
    paused_rules = rules_paused_locked(rule_ids={rule_id for _, _, rule_id in rows})
    ended = {pk for pk, status, _ in rows if status != EnrollmentStatus.ACTIVE}
    held = {pk for pk, status, rule_id in rows if status == EnrollmentStatus.ACTIVE and rule_id in paused_rules}
    if not ended and not held:
        return batch
    EmailQueueItem.objects.filter(pk__in=ended).update(
        status=QueueStatus.CANCELLED, last_error="Sequence ended before the email could be sent", updated_at=now
    )
    EmailQueueItem.objects.filter(pk__in=held).update(
        status=QueueStatus.PAUSED, last_error=PAUSED_NOTE, batch=None, updated_at=now
    )
    ended |= held
    batch.status = BatchStatus.SPLIT
    batch.last_error = f"{len(ended)} email(s) taken out: their sequence ended or their rule is paused"
    batch.save(update_fields=["status", "last_error"])
    keep = [entry for entry in batch.messages if entry["item_id"] not in ended]
    if not keep:
        return None
    items = {item.pk: item for item in EmailQueueItem.objects.filter(pk__in=[e["item_id"] for e in keep])}
    replacement = batch_create([(items[e["item_id"]], e["message"]) for e in keep], worker="", now=now)
    replacement.attempts = batch.attempts
    replacement.save(update_fields=["attempts"])
    EmailQueueItem.objects.filter(pk__in=items).update(batch=replacement, updated_at=now)
    return replacement


def _suppression_reason(item: EmailQueueItem, suppressions: dict[str, set[str]]) -> str | None:
    # One definition of "blocked", shared with the staff screens (automations/email_state.py).
    return item_block_reason(item, suppressions.get(item.recipient.lower(), set()))


def batch_claim_new(*, worker: str, size: int, result: DrainResult) -> tuple[EmailBatch | None, bool]:
    """Claim up to `size` due emails into a new batch. Returns (batch or None, whether any email was handled)."""
    now = timezone.now()
    with transaction.atomic():
        items = list(
            EmailQueueItem.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("customer", "step__template", "enrollment")
            .filter(status=QueueStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")[:size]
        )
        if not items:
            return None, False
        items = send_gate_pass(items, now=now)  # topics, frequency cap, quiet hours: defers or skips the held ones
        suppressions = _suppressions_of(items)
        _recipients_follow_customers(items)
        ready = _items_render_or_set_aside(items, suppressions=suppressions, now=now, result=result)
        # Few statements, not one per email (nor Django's bulk_update, whose CASE per field costs more than the send).
        skipped = [item for item in items if item.status != QueueStatus.PENDING]
        for (status, error), group in _group_by(skipped, lambda i: (i.status, i.last_error)).items():
            EmailQueueItem.objects.filter(pk__in=[i.pk for i in group]).update(
                status=status, last_error=error, updated_at=now
            )
        batch = None
        if ready:
            batch = batch_create(ready, worker=worker, now=now, calling=True)
            EmailQueueItem.objects.filter(pk__in=[item.pk for item, _ in ready]).update(
                status=QueueStatus.SENDING, batch=batch, attempts=F("attempts") + 1, updated_at=now
            )
    return batch, True


def _suppressions_of(items: list[EmailQueueItem]) -> dict[str, set[str]]:
    """The suppression reasons of every address the claimed emails could go to (queued or current), by address."""
    suppressions: dict[str, set[str]] = {}
    addresses = {item.recipient.lower() for item in items} | {item.customer.email.lower() for item in items}
    for email, reason in Suppression.objects.filter(email__in=addresses).values_list("email", "reason"):
        suppressions.setdefault(email, set()).add(reason)
    return suppressions


def _recipients_follow_customers(items: list[EmailQueueItem]) -> None:
    """The customer changed their address since the email was queued: write to where they read now."""
    moved = [item for item in items if item.recipient.lower() != item.customer.email.lower()]
    for item in moved:
        item.recipient = item.customer.email
    if moved:
        EmailQueueItem.objects.filter(pk__in=[item.pk for item in moved]).update(
            recipient=Case(*[When(pk=item.pk, then=Value(item.recipient)) for item in moved])
        )


def _items_render_or_set_aside(
    items: list[EmailQueueItem], *, suppressions: dict[str, set[str]], now, result: DrainResult
) -> list[tuple[EmailQueueItem, dict[str, Any]]]:
    """Render each claimed email that may go out; set the others' status (cancelled, paused, suppressed, failed) on
    the objects, for the caller to write. Returns the (email, message) pairs ready for a batch."""
    # Read FOR SHARE: a pause being written now is waited for, then honoured (automations/rule_pause.py).
    paused = rules_paused_locked(rule_ids={item.enrollment.rule_id for item in items})
    live = [item for item in items if item.enrollment.status == EnrollmentStatus.ACTIVE]
    subscriptions = subscription_contexts(live)
    links = links_context()
    ready: list[tuple[EmailQueueItem, dict[str, Any]]] = []
    for item in items:
        result.touched_enrollments.add(item.enrollment_id)
        item.updated_at = now
        if item.enrollment.status != EnrollmentStatus.ACTIVE:
            item.status, item.last_error = QueueStatus.CANCELLED, f"Enrollment {item.enrollment.status}"
            result.cancelled += 1
            continue
        if item.enrollment.rule_id in paused:
            item.status, item.last_error = QueueStatus.PAUSED, PAUSED_NOTE
            continue
        reason = _suppression_reason(item, suppressions)
        if reason:
            item.status, item.last_error = QueueStatus.SUPPRESSED, reason
            result.suppressed += 1
            continue
        try:
            message = message_for(item, subscription=subscriptions.get(item.pk), links=links)
        except Exception as exc:
            if not isinstance(exc, (TemplateError, ValidationError)):  # a bug in one email's data: the others go on
                logger.exception("Email queue item %s could not be rendered", item.pk)
            item.status, item.last_error = QueueStatus.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
            result.failed += 1
            continue
        ready.append((item, message))
    return ready


def _group_by(items, key) -> dict:
    groups: dict = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def batch_create(
    ready: list[tuple[EmailQueueItem, dict[str, Any]]], *, worker: str, now, calling: bool = False
) -> EmailBatch:
    batch = EmailBatch.objects.create(
        idempotency_key=f"unassigned:{uuid.uuid4()}",
        provider_idempotency_key="",
        messages=[{"item_id": item.pk, "message": message} for item, message in ready],
        lease_expires_at=now + timedelta(seconds=settings.AUTOMATIONS_LEASE_SECONDS),
        next_attempt_at=now,
        worker=worker,
        call_in_progress=calling,
        first_called_at=now if calling else None,
    )
    # Keys derived from our ids; an email alone in its batch is sent under its own key.
    batch.idempotency_key = f"email-batch:{batch.pk}"
    own_key = ready[0][0].idempotency_key if len(ready) == 1 else batch.idempotency_key
    batch.provider_idempotency_key = provider_idempotency_key(own_key)  # namespaced by installation (installation.py)
    batch.save(update_fields=["idempotency_key", "provider_idempotency_key"])
    return batch
