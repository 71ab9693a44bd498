"""Draining the email queue: claim due emails, render them, send them in batches, record what happened.

The guarantees (docs/automations.md has the long version, with which Resend answer means what):

- Claiming uses `SELECT ... FOR UPDATE SKIP LOCKED`: two workers never take the same email.
- Before any call to the provider, the claimed emails are rendered and written into an `EmailBatch` row together with
  the idempotency key of the call, and the emails are marked `sending`. That row is committed first. The stored
  messages are the request body of every attempt of that batch: nothing is re-rendered or re-stamped.
- An answer that does not say whether Resend sent the batch (timeout, dropped connection, any 5xx, 409
  concurrent_idempotent_requests, a worker that died mid-call) makes the batch immutable: it is re-sent byte for
  byte under its key until Resend answers, never split, trimmed or re-keyed. If no answer comes within
  AUTOMATIONS_RETRY_WINDOW_SECONDS of the first call (Resend forgets keys after 24 h), its emails become
  `unconfirmed` and are never sent again by the queue.
- 429: the batch waits for Retry-After and the whole drain pauses that long. 422/400 (validation refused the whole
  call, nothing was sent): a batch of several is split in two; a single email fails. 401/403 and quota errors: our
  configuration; sending pauses for every worker (`SendingPause`), emails stay queued, probes resume it.
  409 invalid_idempotent_request: our bug; logged as an error, shown in the admin, never re-sent under a new key.
- One bad email (template error, invalid address) fails alone while it is being claimed and never reaches a batch.
"""

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Case, F, Min, Value, When
from django.utils import timezone
from jinja2 import TemplateError

from customers.services import timeline_events_record_many
from integrations.resend.client import Outcome, ResendClient, ResendError

from .drain_control import drain_slot, drain_wake_clear, probe_claim, sending_pause, sending_pause_get, sending_resume
from .drain_leases import batch_lease_kept
from .email_state import item_block_reason
from .installation import provider_idempotency_key
from .models import (
    BatchStatus,
    EmailBatch,
    EmailQueueItem,
    EnrollmentStatus,
    ProviderCallSlot,
    QueueStatus,
    SendingPause,
    Suppression,
    TemplateCategory,
)
from .rendering import SUBSCRIPTION_FIELDS, customer_context, links_context, render_email
from .rule_pause import PAUSED_NOTE, rules_paused_locked
from .services import (
    campaign_stage_on_sent,
    email_events_link_recent_unmatched,
    email_events_link_unmatched,
    enrollments_complete_finished,
    queue_process_enqueue,
    unsubscribe_url,
)

logger = logging.getLogger(__name__)

RESEND_BACKEND = "integrations.resend.backend.EmailBackend"
DEFAULT_RATE_LIMIT_WAIT = 1.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- transports ---------------------------------------------------------------------------------------------------


def _email_message(message: dict[str, Any], *, idempotency_key: str) -> EmailMultiAlternatives:
    email = EmailMultiAlternatives(
        subject=message["subject"],
        body=message["text"],
        from_email=message["from"],
        to=message["to"],
        # Sorted: the stored message comes back from its JSON column in another key order, and anymail writes the
        # headers in dict order; the request must be the same bytes on every retry under the email's key.
        headers=dict(sorted((message.get("headers") or {}).items())),
    )
    email.attach_alternative(message["html"], "text/html")
    email.idempotency_key = idempotency_key  # read by integrations.resend.backend
    return email


def _send_one(message: dict[str, Any], *, idempotency_key: str, backend: str | None) -> str:
    """Send one message through a Django email backend; returns the provider's message id (or a local one)."""
    from anymail.exceptions import AnymailRequestsAPIError

    email = _email_message(message, idempotency_key=idempotency_key)
    try:
        with get_connection(backend) as connection:
            email.connection = connection
            email.send()
    except AnymailRequestsAPIError as exc:
        response = getattr(exc, "response", None)
        if response is None:  # timeout or connection error: anymail wraps the requests exception
            raise ResendError.from_transport(exc) from exc
        raise ResendError.from_response(response) from exc
    except (OSError, ValueError) as exc:  # SMTP and file backends
        raise ResendError.from_transport(exc) from exc
    status = getattr(email, "anymail_status", None)
    return (status.message_id if status else None) or f"local:{idempotency_key}"


class DjangoMailTransport:
    """One email per call through EMAIL_BACKEND: files in var/emails/ locally, locmem in tests."""

    batch_size = 1
    provider = ""  # local files or locmem: no account to pause

    def send(self, *, messages: list[dict[str, Any]], idempotency_key: str) -> list[str]:
        return [_send_one(message, idempotency_key=idempotency_key, backend=None) for message in messages]


class ResendTransport:
    """Resend: one email through anymail's backend (plus Idempotency-Key), several through the batch endpoint.

    Calls are paced to the team's rate limit across all workers (provider_slot_reserve); the limit is the setting
    until Resend's `ratelimit-limit` answer header says otherwise.
    """

    provider = "resend"

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.batch_size = settings.AUTOMATIONS_BATCH_SIZE
        self.client = ResendClient.from_settings()
        self.requests_per_second = float(settings.AUTOMATIONS_RESEND_REQUESTS_PER_SECOND)
        self.sleep = sleep

    def send(self, *, messages: list[dict[str, Any]], idempotency_key: str) -> list[str]:
        if self.requests_per_second > 0:
            wait = provider_slot_reserve(provider=self.provider, interval=PACING_MARGIN / self.requests_per_second)
            if wait > 0:
                self.sleep(wait)
        if len(messages) == 1:
            return [_send_one(messages[0], idempotency_key=idempotency_key, backend=RESEND_BACKEND)]
        try:
            return self.client.batch_send(messages=messages, idempotency_key=idempotency_key)
        finally:
            if self.client.rate_limit:
                self.requests_per_second = float(self.client.rate_limit)


# Slots a little wider than 1/limit: requests leave on time but arrive with jitter, and the provider counts arrivals.
PACING_MARGIN = 1.05


def provider_slot_reserve(*, provider: str, interval: float) -> float:
    """Reserve the next call slot for `provider`; returns the seconds to wait for it (0 when it is now).

    One statement, so two workers can never take the same slot; it runs in its own short transaction (autocommit) so
    the row is never held while a worker sleeps or calls out.
    """
    if connection.vendor != "postgresql":
        return 0.0  # the local single-process run (SQLite) has no second worker to share with
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ProviderCallSlot._meta.db_table} AS slot (provider, next_slot_at)"  # noqa: S608
            " VALUES (%s, clock_timestamp() + make_interval(secs => %s))"
            " ON CONFLICT (provider) DO UPDATE SET next_slot_at ="
            " GREATEST(slot.next_slot_at, clock_timestamp()) + make_interval(secs => %s)"
            " RETURNING EXTRACT(EPOCH FROM (slot.next_slot_at - make_interval(secs => %s) - clock_timestamp()))",
            [provider, interval, interval, interval],
        )
        (wait,) = cursor.fetchone()
    return max(0.0, float(wait))


def transport_get(*, sleep: Callable[[float], None] = time.sleep):
    if settings.AUTOMATIONS_EMAIL_TRANSPORT == "resend":
        return ResendTransport(sleep=sleep)
    return DjangoMailTransport()


# --- claiming -----------------------------------------------------------------------------------------------------


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
    replacement = _batch_create([(items[e["item_id"]], e["message"]) for e in keep], worker="", now=now)
    replacement.attempts = batch.attempts
    replacement.save(update_fields=["attempts"])
    EmailQueueItem.objects.filter(pk__in=items).update(batch=replacement, updated_at=now)
    return replacement


def _suppression_reason(item: EmailQueueItem, suppressions: dict[str, set[str]]) -> str | None:
    # One definition of "blocked", shared with the staff screens (automations/email_state.py).
    return item_block_reason(item, suppressions.get(item.recipient.lower(), set()))


def _mentions_subscription(template) -> bool:
    return any(
        "subscription" in source
        for source in (template.subject, template.preheader, template.html_body, template.text_body)
    )


def _subscription_contexts(items: list[EmailQueueItem]) -> dict[int, dict[str, Any] | None]:
    """Each email's `subscription` context, by queue item id, for a whole batch in one query into billing.

    The same answer as rendering.subscription_context (billing's current subscription, else the triggering event's
    payload), loaded in bulk: one query per email was the drain's biggest cost. Only for templates that mention it.
    """
    needing = [item for item in items if _mentions_subscription(item.step.template)]
    if not needing:
        return {}
    try:
        from billing.selectors import subscriptions_current_for_customers
    except ImportError:  # a deployment without billing: the event payload is all there is
        current = {}
    else:
        current = subscriptions_current_for_customers(customer_ids={item.customer_id for item in needing})
    contexts: dict[int, dict[str, Any] | None] = {}
    for item in needing:
        subscription = current.get(item.customer_id)
        payload = item.enrollment.context or {}
        if subscription is not None:
            values = {name: getattr(subscription, name, None) for name in SUBSCRIPTION_FIELDS}
            for name in ("current_period_end", "trial_end"):
                if isinstance(values[name], datetime):
                    values[name] = values[name].isoformat()
            contexts[item.pk] = values
        elif payload.get("product_name") or payload.get("subscription_id"):
            contexts[item.pk] = {name: payload.get(name) for name in SUBSCRIPTION_FIELDS}
        else:
            contexts[item.pk] = None
    return contexts


def _message_for(item: EmailQueueItem, *, subscription: dict[str, Any] | None, links: dict[str, str]) -> dict:
    """Render one email to Resend's message shape. Raises TemplateError or ValidationError for a bad email."""
    validate_email(item.recipient)
    template = item.step.template
    link = unsubscribe_url(email=item.recipient, queue_item_id=item.pk)
    context = {
        "customer": customer_context(item.customer),
        "subscription": subscription,
        "event": item.enrollment.context,
        "unsubscribe_url": link,
        **links,
    }
    rendered = render_email(template=template, context=context)
    headers = {"X-Entity-Ref-ID": item.idempotency_key}
    if template.category == TemplateCategory.MARKETING:
        # RFC 8058 one-click unsubscribe: mailbox providers POST to the link without showing our page.
        headers["List-Unsubscribe"] = f"<{link}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return {
        "from": settings.DEFAULT_FROM_EMAIL,
        "to": [item.recipient],
        "subject": rendered.subject,
        "html": rendered.html,
        "text": rendered.text,
        "headers": headers,
    }


def message_preview(item: EmailQueueItem) -> dict:
    """The message the queue would send for `item` if it were rendered now (the admin's preview of an email not yet
    rendered). Writes nothing. Raises TemplateError or ValidationError like the queue's own rendering."""
    contexts = _subscription_contexts([item])
    return _message_for(item, subscription=contexts.get(item.pk), links=links_context())


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
        suppressions: dict[str, set[str]] = {}
        addresses = {item.recipient.lower() for item in items} | {item.customer.email.lower() for item in items}
        for email, reason in Suppression.objects.filter(email__in=addresses).values_list("email", "reason"):
            suppressions.setdefault(email, set()).add(reason)

        ready: list[tuple[EmailQueueItem, dict[str, Any]]] = []
        moved = [item for item in items if item.recipient.lower() != item.customer.email.lower()]
        for item in moved:
            # The customer changed their address since the email was queued: write to where they read now.
            item.recipient = item.customer.email
        if moved:
            EmailQueueItem.objects.filter(pk__in=[item.pk for item in moved]).update(
                recipient=Case(*[When(pk=item.pk, then=Value(item.recipient)) for item in moved])
            )
        # Read FOR SHARE: a pause being written now is waited for, then honoured (automations/rule_pause.py).
        paused = rules_paused_locked(rule_ids={item.enrollment.rule_id for item in items})
        live = [item for item in items if item.enrollment.status == EnrollmentStatus.ACTIVE]
        subscriptions = _subscription_contexts(live)
        links = links_context()
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
                message = _message_for(item, subscription=subscriptions.get(item.pk), links=links)
            except (TemplateError, ValidationError) as exc:
                item.status, item.last_error = QueueStatus.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
                result.failed += 1
                continue
            except Exception as exc:  # a bug in one email's data must not stop the others
                logger.exception("Email queue item %s could not be rendered", item.pk)
                item.status, item.last_error = QueueStatus.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
                result.failed += 1
                continue
            ready.append((item, message))

        # Few statements, not one per email (nor Django's bulk_update, whose CASE per field costs more than the send).
        skipped = [item for item in items if item.status != QueueStatus.PENDING]
        for (status, error), group in _group_by(skipped, lambda i: (i.status, i.last_error)).items():
            EmailQueueItem.objects.filter(pk__in=[i.pk for i in group]).update(
                status=status, last_error=error, updated_at=now
            )
        batch = None
        if ready:
            batch = _batch_create(ready, worker=worker, now=now, calling=True)
            EmailQueueItem.objects.filter(pk__in=[item.pk for item, _ in ready]).update(
                status=QueueStatus.SENDING, batch=batch, attempts=F("attempts") + 1, updated_at=now
            )
    return batch, True


def _group_by(items, key) -> dict:
    groups: dict = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def _batch_create(
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


# --- sending and recording ---------------------------------------------------------------------------------------


def batch_send(*, batch: EmailBatch, transport, result: DrainResult, worker: str = "") -> float:
    """Make the provider call for a claimed batch and record the outcome. Returns seconds the drain should pause."""
    messages = [entry["message"] for entry in batch.messages]
    try:
        message_ids = transport.send(messages=messages, idempotency_key=batch.provider_idempotency_key)
    except ResendError as exc:
        return batch_record_failure(
            batch=batch, error=exc, result=result, worker=worker or batch.worker, provider=transport.provider
        )
    batch_record_sent(batch=batch, message_ids=message_ids, result=result)
    return 0.0


@transaction.atomic
def batch_record_sent(*, batch: EmailBatch, message_ids: list[str], result: DrainResult) -> None:
    batch = EmailBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != BatchStatus.SENDING:
        return  # another worker took over this batch after our lease ran out and recorded it first
    now = timezone.now()
    batch.status, batch.sent_at, batch.last_error, batch.call_in_progress = BatchStatus.SENT, now, "", False
    batch.error_name = ""
    batch.save(update_fields=["status", "sent_at", "last_error", "call_in_progress", "error_name"])
    ids_by_item = {entry["item_id"]: message_id for entry, message_id in zip(batch.messages, message_ids, strict=True)}
    items = list(
        EmailQueueItem.objects.filter(pk__in=ids_by_item, status=QueueStatus.SENDING).select_related(
            "step__template", "step__rule"
        )
    )
    for item in items:
        item.provider_message_id = ids_by_item[item.pk]
        result.touched_enrollments.add(item.enrollment_id)
    _items_mark_sent(items, now=now)
    # A sequence that ended while Resend may already have had its email (a cancel during a retry's backoff): the
    # email went out, and says so next to the wish to cancel it.
    EmailQueueItem.objects.filter(
        pk__in=[item.pk for item in items], enrollment__status=EnrollmentStatus.EXITED
    ).update(
        last_error="Sent although its sequence ended meanwhile: it was in a call Resend may already have accepted, "
        "which is never changed"
    )
    subjects = {entry["item_id"]: entry["message"]["subject"] for entry in batch.messages}
    timeline_events_record_many(
        events=[
            {
                "customer_id": item.customer_id,
                "source": "email",
                "source_key": f"{item.idempotency_key}:sent",
                "kind": "email.sent",
                "occurred_at": now,
                "summary": f"Sent {item.step.template.name}: {subjects[item.pk]}",
                "payload": {"queue_item_id": item.pk, "provider_message_id": item.provider_message_id},
                "object_type": "email.queue_item",
                "object_id": str(item.pk),
            }
            for item in items
        ]
    )
    # A re-engagement campaign that reached a churned customer moves them to Win-back (customers/lifecycle.py).
    campaign_stage_on_sent(items=items, sent_at=now)
    result.sent += len(items)
    result.batches += 1
    # Resend can report "delivered" before we have stored the message id; those events wait unlinked until now.
    email_events_link_unmatched(provider_message_ids=list(ids_by_item.values()))


def _items_mark_sent(items: list[EmailQueueItem], *, now) -> None:
    """One UPDATE for a whole batch, each email with its own provider message id."""
    if not items:
        return
    if connection.vendor == "postgresql":
        values = ", ".join(["(%s::bigint, %s)"] * len(items))
        params = [value for item in items for value in (item.pk, item.provider_message_id)]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {EmailQueueItem._meta.db_table} AS item"  # noqa: S608 - only placeholders are interpolated
                " SET status = %s, provider_message_id = v.message_id, sent_at = %s, last_error = '', updated_at = %s"
                f" FROM (VALUES {values}) AS v(id, message_id) WHERE item.id = v.id",
                [QueueStatus.SENT, now, now, *params],
            )
        return
    EmailQueueItem.objects.filter(pk__in=[item.pk for item in items]).update(
        status=QueueStatus.SENT,
        sent_at=now,
        last_error="",
        updated_at=now,
        provider_message_id=Case(*[When(pk=item.pk, then=Value(item.provider_message_id)) for item in items]),
    )


BATCH_STATE_FIELDS = [
    "last_error",
    "error_name",
    "call_in_progress",
    "possibly_accepted",
    "lease_expires_at",
    "next_attempt_at",
    "attempts",
]


@transaction.atomic
def batch_record_failure(
    *, batch: EmailBatch, error: ResendError, result: DrainResult, worker: str, provider: str = "resend"
) -> float:
    """Record an error answer according to what it proves (docs/automations.md, "Which answer means what")."""
    batch = EmailBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != BatchStatus.SENDING or batch.worker != worker:
        # Sent meanwhile, or our lease ran out and another worker has taken the batch (and may be calling now):
        # its outcome, not ours, decides. A success is always recorded (batch_record_sent), whoever made the call.
        return 0.0
    now = timezone.now()
    message = str(error)[:2000]
    outcome = error.outcome
    batch.last_error = message
    batch.error_name = error.name[:100]
    batch.call_in_progress = False
    if outcome == Outcome.RATE_LIMITED:
        wait = error.retry_after if error.retry_after is not None else DEFAULT_RATE_LIMIT_WAIT
        batch.lease_expires_at = batch.next_attempt_at = now + timedelta(seconds=wait)
        batch.save(update_fields=BATCH_STATE_FIELDS)
        result.rate_limited += 1
        return wait
    if outcome == Outcome.UNKNOWN:
        return _batch_retry_unchanged(batch, message=message, now=now, result=result)
    if outcome == Outcome.KEY_CONFLICT:
        logger.error(
            "Resend refused batch %s's idempotency key (%s): the payload stored for the key changed, which the queue "
            "must never do. The batch is not re-sent under a new key; check Resend's log for what went out.",
            batch.idempotency_key,
            error.name,
        )
        _batch_unconfirmed(
            batch,
            message=f"Idempotency key refused ({error.name}): a bug on our side; not re-sent under a new key. "
            f"Check Resend's log for whether it went out. {message}",
            result=result,
        )
        return 0.0
    if outcome == Outcome.CONFIGURATION:
        pause = sending_pause(provider=provider or "resend", error=error)
        result.paused = pause.cause
        _batch_hold_for_pause(batch, pause=pause, now=now)
        return 0.0
    # Validation refused the whole call: nothing was sent, so the batch may be split under new keys.
    if len(batch.messages) > 1:
        _batch_split(batch, message=message, now=now)
        result.splits += 1
        return 0.0
    _batch_fail(batch, message=message, result=result)
    return 0.0


def _batch_retry_unchanged(batch: EmailBatch, *, message: str, now, result: DrainResult) -> float:
    """Resend may have sent it: only the same stored payload under the same key may follow, until Resend answers."""
    batch.possibly_accepted = True
    batch.attempts += 1
    give_up_at = (batch.first_called_at or now) + timedelta(seconds=settings.AUTOMATIONS_RETRY_WINDOW_SECONDS)
    if now >= give_up_at:
        logger.error("Batch %s: no answer from Resend within its idempotency window", batch.idempotency_key)
        _batch_unconfirmed(
            batch,
            message=f"No definitive answer from Resend within {settings.AUTOMATIONS_RETRY_WINDOW_SECONDS // 3600} h of "
            f"the first call ({batch.attempts} attempts); it may have been delivered, and is not sent again "
            f"(Resend forgets the key after 24 h). Last: {message}",
            result=result,
        )
        return 0.0
    backoff = min(
        settings.AUTOMATIONS_RETRY_BASE_SECONDS * 2 ** (batch.attempts - 1), settings.AUTOMATIONS_RETRY_MAX_SECONDS
    )
    batch.lease_expires_at = batch.next_attempt_at = min(now + timedelta(seconds=backoff), give_up_at)
    batch.save(update_fields=BATCH_STATE_FIELDS)
    batch.items.update(last_error=message, attempts=batch.attempts, updated_at=now)
    result.retries += 1
    return 0.0


def _batch_unconfirmed(batch: EmailBatch, *, message: str, result: DrainResult) -> None:
    now = timezone.now()
    batch.status = BatchStatus.UNCONFIRMED
    batch.last_error = message[:2000]
    batch.save(update_fields=["status", *BATCH_STATE_FIELDS])
    result.unconfirmed += batch.items.filter(status=QueueStatus.SENDING).update(
        status=QueueStatus.UNCONFIRMED, last_error=message[:2000], updated_at=now
    )
    result.touched_enrollments.update(batch.items.values_list("enrollment_id", flat=True))


def _batch_hold_for_pause(batch: EmailBatch, *, pause: SendingPause, now) -> None:
    """Our configuration refused the call, so nothing was sent: no email fails. A batch Resend may have accepted
    earlier stays as it is until a probe; any other goes back to the queue, its emails pending as before."""
    held = f"Waiting: sending is paused ({pause.cause})"[:2000]
    if batch.possibly_accepted:
        batch.lease_expires_at = batch.next_attempt_at = pause.next_probe_at
        batch.save(update_fields=BATCH_STATE_FIELDS)
        batch.items.update(last_error=held, updated_at=now)
        return
    batch.status = BatchStatus.RELEASED
    batch.save(update_fields=["status", *BATCH_STATE_FIELDS])
    batch.items.filter(status=QueueStatus.SENDING).update(
        status=QueueStatus.PENDING, batch=None, last_error=held, next_attempt_at=now, updated_at=now
    )


def _batch_fail(batch: EmailBatch, *, message: str, result: DrainResult) -> None:
    now = timezone.now()
    batch.status = BatchStatus.FAILED
    batch.last_error = message[:2000]
    batch.save(update_fields=["status", *BATCH_STATE_FIELDS])
    result.failed += batch.items.filter(status=QueueStatus.SENDING).update(
        status=QueueStatus.FAILED, last_error=message[:2000], updated_at=now
    )
    result.touched_enrollments.update(batch.items.values_list("enrollment_id", flat=True))


def _batch_split(batch: EmailBatch, *, message: str, now) -> None:
    """Validation refused the whole batch for one bad email (nothing was sent): each half goes on its own, under new
    keys. Only ever on such a refusal: a batch Resend may have accepted is never split."""
    batch.status = BatchStatus.SPLIT
    batch.save(update_fields=["status", *BATCH_STATE_FIELDS])
    middle = len(batch.messages) // 2
    for half in (batch.messages[:middle], batch.messages[middle:]):
        item_ids = [entry["item_id"] for entry in half]
        items = {item.pk: item for item in EmailQueueItem.objects.filter(pk__in=item_ids)}
        child = _batch_create([(items[entry["item_id"]], entry["message"]) for entry in half], worker="", now=now)
        child.lease_expires_at = now
        child.save(update_fields=["lease_expires_at"])
        EmailQueueItem.objects.filter(pk__in=item_ids).update(batch=child, last_error=message, updated_at=now)


# --- the drain -----------------------------------------------------------------------------------------------------


WAIT_STEP_SECONDS = 1.0


def _seconds_to_next_due() -> float | None:
    """When the next email or batch retry is due, in seconds from now (0 if already), or None if nothing waits."""
    pending = EmailQueueItem.objects.filter(status=QueueStatus.PENDING).aggregate(at=Min("next_attempt_at"))["at"]
    retry = EmailBatch.objects.filter(status=BatchStatus.SENDING).aggregate(at=Min("lease_expires_at"))["at"]
    moments = [moment for moment in (pending, retry) if moment is not None]
    if not moments:
        return None
    return max(0.0, (min(moments) - timezone.now()).total_seconds())


def email_queue_process(
    *,
    worker: str | None = None,
    time_budget: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    wait_for_due: bool = False,
) -> DrainResult:
    """Drain due emails until none is left or the time budget is spent. Safe to run in several workers at once.

    With `wait_for_due` (the task queue's drain) it also waits for emails and retries that fall due within the
    budget instead of leaving them to the next scheduled run.
    """
    if settings.EMAIL_DELIVERY == "disabled":
        # Nothing is sent and nothing is marked sent: due emails stay pending until delivery is enabled again.
        # Reported as a pause, so a task's drain ends at once instead of waiting for emails it will never send.
        logger.warning("Email delivery is disabled (EMAIL_DELIVERY=disabled): the email queue is not drained.")
        return DrainResult(paused="Email delivery is disabled (EMAIL_DELIVERY=disabled).")
    worker = worker or worker_name()
    budget = settings.AUTOMATIONS_DRAIN_SECONDS if time_budget is None else time_budget
    deadline = time.monotonic() + budget
    transport = transport_get(sleep=sleep)
    result = DrainResult()
    while time.monotonic() < deadline:
        probing = False
        pause = sending_pause_get(provider=transport.provider)
        if pause is not None:
            result.paused = pause.cause
            if not probe_claim(provider=transport.provider):
                break  # not this worker's turn to probe; every email stays where it is
            probing = True
        batch = batch_claim_in_flight(worker=worker)
        if batch is None:
            size = 1 if probing else transport.batch_size
            batch, handled = batch_claim_new(worker=worker, size=size, result=result)
            if batch is None:
                if handled and not probing:
                    continue  # every claimed email was cancelled, suppressed or failed; look for more
                if wait_for_due and not probing:
                    due_in = _seconds_to_next_due()
                    if due_in is not None and time.monotonic() + due_in < deadline:
                        # In steps of at most a second: an email enqueued meanwhile (whose wake-up found this slot
                        # busy) must not wait for a retry due much later.
                        step = min(max(due_in, 0.05), WAIT_STEP_SECONDS)
                        sleep(step)
                        result.waited_seconds += step
                        continue
                break
        with batch_lease_kept(batch=batch, worker=worker):  # a drain that dies here leaves the lease to run out
            wait = batch_send(batch=batch, transport=transport, result=result, worker=worker)
        if probing:
            if not EmailBatch.objects.filter(pk=batch.pk, status=BatchStatus.SENT).exists():
                break  # the probe did not get through: stay paused
            sending_resume(provider=transport.provider, by="a probe call went through")
            result.paused = ""
        if wait:
            # A 429 is about our whole account, not this batch: every further call would be refused too.
            if time.monotonic() + wait >= deadline:
                break
            sleep(wait)
            result.waited_seconds += wait
    enrollments_complete_finished(enrollment_ids=result.touched_enrollments)
    email_events_link_recent_unmatched()
    return result


def email_queue_drain(*, woken: bool = False, sleep: Callable[[float], None] = time.sleep) -> DrainResult:
    """The task queue's drain: in a free slot, until nothing is due, then hand over to a fresh task if time ran out.

    A drain that finds every slot busy ends at once: each busy drain looks for due work again after giving its slot
    back, so the emails that woke it are not left behind.
    """
    if woken:
        drain_wake_clear()
    deadline = time.monotonic() + settings.AUTOMATIONS_DRAIN_SECONDS
    total = DrainResult()
    while True:
        with drain_slot() as slot:
            if slot is None:
                return total
            total.add(email_queue_process(time_budget=deadline - time.monotonic(), sleep=sleep, wait_for_due=True))
        if total.paused or _seconds_to_next_due() != 0.0:
            return total
        if time.monotonic() >= deadline - 1:
            queue_process_enqueue()  # due work is left and this task's time is up: a fresh task continues
            return total


def send_test_email(*, to: str, rendered, marketing: bool) -> str:
    """The admin's "send me a test": straight to the staff member, outside the queue, never to a customer."""
    message = {
        "from": settings.DEFAULT_FROM_EMAIL,
        "to": [to],
        "subject": f"[Test] {rendered.subject}",
        "html": rendered.html,
        "text": rendered.text,
        "headers": {"X-ModReady-Test": "1"},
    }
    backend = RESEND_BACKEND if settings.AUTOMATIONS_EMAIL_TRANSPORT == "resend" else None
    return _send_one(message, idempotency_key="", backend=backend)
