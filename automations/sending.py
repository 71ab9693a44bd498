"""Draining the email queue: claim due emails, render them, send them in batches, record what happened.

The guarantees (docs/automations.md has the long version):

- Claiming uses `SELECT ... FOR UPDATE SKIP LOCKED`: two workers never take the same email.
- Before any call to the provider, the claimed emails are rendered and written into an `EmailBatch` row together with
  the idempotency key of the call, and the emails are marked `sending`. That row is committed first. A worker that
  dies after the provider accepted the call leaves the batch `sending` with an expired lease; the next worker
  re-sends exactly the stored messages with the same key, and Resend answers with its first answer without sending.
- 429: the batch waits for Retry-After and the whole drain pauses that long. 5xx, timeouts and dropped connections:
  exponential backoff up to AUTOMATIONS_MAX_SEND_ATTEMPTS, then the emails fail with the error. Any other 4xx: a
  batch of several is split in two (strict validation refused all of it, so nothing was sent); a single email fails
  at once.
- One bad email (template error, invalid address) fails alone while it is being claimed and never reaches a batch.
"""

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from jinja2 import TemplateError

from customers.models import Customer
from customers.services import timeline_event_record
from integrations.resend.client import ResendClient, ResendError

from .models import (
    SUPPRESSES_TRANSACTIONAL,
    BatchStatus,
    EmailBatch,
    EmailQueueItem,
    EnrollmentStatus,
    ProviderCallSlot,
    QueueStatus,
    Suppression,
    TemplateCategory,
)
from .rendering import customer_context, links_context, render_email, subscription_context
from .services import (
    email_events_link_recent_unmatched,
    email_events_link_unmatched,
    enrollments_complete_finished,
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
        headers=message.get("headers") or {},
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
    waited_seconds: float = 0.0
    touched_enrollments: set[int] = field(default_factory=set)


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
        batch.save(update_fields=["lease_expires_at", "worker", "call_in_progress", "possibly_accepted"])
    return batch


def _batch_prune_ended(batch: EmailBatch, *, now) -> EmailBatch | None:
    """Take emails whose sequence ended while the batch waited (payment recovered during a 429 or 5xx backoff) out of
    a batch the provider has certainly not accepted. Returns the batch to send: this one, a smaller replacement under
    a new key, or None when nothing is left."""
    item_ids = [entry["item_id"] for entry in batch.messages]
    ended = set(
        EmailQueueItem.objects.filter(pk__in=item_ids)
        .exclude(enrollment__status=EnrollmentStatus.ACTIVE)
        .values_list("pk", flat=True)
    )
    if not ended:
        return batch
    EmailQueueItem.objects.filter(pk__in=ended).update(
        status=QueueStatus.CANCELLED, last_error="Sequence ended before the email could be sent", updated_at=now
    )
    batch.status = BatchStatus.SPLIT
    batch.last_error = f"{len(ended)} email(s) taken out: their sequence ended"
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
    template = item.step.template
    reasons = suppressions.get(item.recipient.lower(), set())
    if template.category == TemplateCategory.MARKETING:
        if not item.customer.opt_in_confirmed:
            return "No marketing consent (opt_in_confirmed is off)"
        if reasons:
            return f"Address suppressed: {', '.join(sorted(reasons))}"
    blocking = reasons & set(SUPPRESSES_TRANSACTIONAL)
    if blocking:
        return f"Address suppressed: {', '.join(sorted(blocking))}"
    return None


def _message_for(item: EmailQueueItem, *, subscriptions: dict[int, Any]) -> dict[str, Any]:
    """Render one email to Resend's message shape. Raises TemplateError or ValidationError for a bad email."""
    validate_email(item.recipient)
    template = item.step.template
    customer = item.customer
    # One query per customer into billing, skipped for templates that never mention the subscription.
    subscription = None
    if any(
        "subscription" in source
        for source in (template.subject, template.preheader, template.html_body, template.text_body)
    ):
        if customer.pk not in subscriptions:
            subscriptions[customer.pk] = subscription_context(customer=customer, event_payload=item.enrollment.context)
        subscription = subscriptions[customer.pk]
    link = unsubscribe_url(email=item.recipient, queue_item_id=item.pk)
    context = {
        "customer": customer_context(customer),
        "subscription": subscription,
        "event": item.enrollment.context,
        "unsubscribe_url": link,
        **links_context(),
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
        subscriptions: dict[int, Any] = {}
        for item in items:
            if item.recipient.lower() != item.customer.email.lower():
                # The customer changed their address since the email was queued: write to where they read now.
                item.recipient = item.customer.email
                EmailQueueItem.objects.filter(pk=item.pk).update(recipient=item.recipient)
            result.touched_enrollments.add(item.enrollment_id)
            item.updated_at = now
            if item.enrollment.status != EnrollmentStatus.ACTIVE:
                item.status, item.last_error = QueueStatus.CANCELLED, f"Enrollment {item.enrollment.status}"
                result.cancelled += 1
                continue
            reason = _suppression_reason(item, suppressions)
            if reason:
                item.status, item.last_error = QueueStatus.SUPPRESSED, reason
                result.suppressed += 1
                continue
            try:
                message = _message_for(item, subscriptions=subscriptions)
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
    )
    # Keys derived from our ids; an email alone in its batch is sent under its own key.
    batch.idempotency_key = f"email-batch:{batch.pk}"
    batch.provider_idempotency_key = ready[0][0].idempotency_key if len(ready) == 1 else batch.idempotency_key
    batch.save(update_fields=["idempotency_key", "provider_idempotency_key"])
    return batch


# --- sending and recording ---------------------------------------------------------------------------------------


def batch_send(*, batch: EmailBatch, transport, result: DrainResult, worker: str = "") -> float:
    """Make the provider call for a claimed batch and record the outcome. Returns seconds the drain should pause."""
    messages = [entry["message"] for entry in batch.messages]
    try:
        message_ids = transport.send(messages=messages, idempotency_key=batch.provider_idempotency_key)
    except ResendError as exc:
        return batch_record_failure(batch=batch, error=exc, result=result, worker=worker or batch.worker)
    batch_record_sent(batch=batch, message_ids=message_ids, result=result)
    return 0.0


@transaction.atomic
def batch_record_sent(*, batch: EmailBatch, message_ids: list[str], result: DrainResult) -> None:
    batch = EmailBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != BatchStatus.SENDING:
        return  # another worker took over this batch after our lease ran out and recorded it first
    now = timezone.now()
    batch.status, batch.sent_at, batch.last_error, batch.call_in_progress = BatchStatus.SENT, now, "", False
    batch.save(update_fields=["status", "sent_at", "last_error", "call_in_progress"])
    ids_by_item = {entry["item_id"]: message_id for entry, message_id in zip(batch.messages, message_ids, strict=True)}
    items = list(
        EmailQueueItem.objects.filter(pk__in=ids_by_item, status=QueueStatus.SENDING).select_related("step__template")
    )
    for item in items:
        item.provider_message_id = ids_by_item[item.pk]
        result.touched_enrollments.add(item.enrollment_id)
    _items_mark_sent(items, now=now)
    subjects = {entry["item_id"]: entry["message"]["subject"] for entry in batch.messages}
    for item in items:
        # The id is all the timeline needs; loading every customer row would slow the drain for nothing.
        timeline_event_record(
            customer=Customer(pk=item.customer_id),
            source="email",
            source_key=f"{item.idempotency_key}:sent",
            kind="email.sent",
            occurred_at=now,
            summary=f"Sent {item.step.template.name}: {subjects[item.pk]}",
            payload={"queue_item_id": item.pk, "provider_message_id": item.provider_message_id},
            object_type="email.queue_item",
            object_id=str(item.pk),
        )
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


@transaction.atomic
def batch_record_failure(*, batch: EmailBatch, error: ResendError, result: DrainResult, worker: str) -> float:
    batch = EmailBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != BatchStatus.SENDING or batch.worker != worker:
        # Sent meanwhile, or our lease ran out and another worker has taken the batch (and may be calling now):
        # its outcome, not ours, decides. A success is always recorded (batch_record_sent), whoever made the call.
        return 0.0
    now = timezone.now()
    message = str(error)[:2000]
    batch.last_error = message
    batch.call_in_progress = False
    if error.status == 0:
        batch.possibly_accepted = True  # no answer: Resend may have sent it
    state = ["last_error", "call_in_progress", "possibly_accepted", "lease_expires_at", "next_attempt_at"]
    if error.status == 429:
        wait = error.retry_after if error.retry_after is not None else DEFAULT_RATE_LIMIT_WAIT
        batch.lease_expires_at = batch.next_attempt_at = now + timedelta(seconds=wait)
        batch.save(update_fields=state)
        result.rate_limited += 1
        return wait
    if error.is_retryable:
        batch.attempts += 1
        if batch.attempts < settings.AUTOMATIONS_MAX_SEND_ATTEMPTS:
            backoff = settings.AUTOMATIONS_RETRY_BASE_SECONDS * 2 ** (batch.attempts - 1)
            batch.lease_expires_at = batch.next_attempt_at = now + timedelta(seconds=backoff)
            batch.save(update_fields=[*state, "attempts"])
            batch.items.update(last_error=message, attempts=batch.attempts, updated_at=now)
            result.retries += 1
            return 0.0
        _batch_fail(batch, message=f"Gave up after {batch.attempts} attempts: {message}", result=result)
        return 0.0
    if len(batch.messages) > 1:
        _batch_split(batch, message=message, now=now)
        result.splits += 1
        return 0.0
    _batch_fail(batch, message=message, result=result)
    return 0.0


def _batch_fail(batch: EmailBatch, *, message: str, result: DrainResult) -> None:
    now = timezone.now()
    batch.status = BatchStatus.FAILED
    batch.last_error = message[:2000]
    batch.save(update_fields=["status", "last_error", "attempts", "call_in_progress", "possibly_accepted"])
    result.failed += batch.items.filter(status=QueueStatus.SENDING).update(
        status=QueueStatus.FAILED, last_error=message[:2000], updated_at=now
    )
    result.touched_enrollments.update(batch.items.values_list("enrollment_id", flat=True))


def _batch_split(batch: EmailBatch, *, message: str, now) -> None:
    """The provider refused the whole batch for one bad email: send each half on its own, under new keys."""
    batch.status = BatchStatus.SPLIT
    batch.save(update_fields=["status", "last_error", "call_in_progress", "possibly_accepted"])
    middle = len(batch.messages) // 2
    for half in (batch.messages[:middle], batch.messages[middle:]):
        item_ids = [entry["item_id"] for entry in half]
        items = {item.pk: item for item in EmailQueueItem.objects.filter(pk__in=item_ids)}
        child = _batch_create([(items[entry["item_id"]], entry["message"]) for entry in half], worker="", now=now)
        child.lease_expires_at = now
        child.save(update_fields=["lease_expires_at"])
        EmailQueueItem.objects.filter(pk__in=item_ids).update(batch=child, last_error=message, updated_at=now)


def email_queue_process(
    *,
    worker: str | None = None,
    time_budget: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DrainResult:
    """Drain due emails until none is left or the time budget is spent. Safe to run in several workers at once."""
    if settings.EMAIL_DELIVERY == "disabled":
        # Nothing is sent and nothing is marked sent: due emails stay pending until delivery is enabled again.
        logger.warning("Email delivery is disabled (EMAIL_DELIVERY=disabled): the email queue is not drained.")
        return DrainResult()
    worker = worker or worker_name()
    budget = settings.AUTOMATIONS_DRAIN_SECONDS if time_budget is None else time_budget
    deadline = time.monotonic() + budget
    transport = transport_get(sleep=sleep)
    result = DrainResult()
    while time.monotonic() < deadline:
        batch = batch_claim_in_flight(worker=worker)
        if batch is None:
            batch, handled = batch_claim_new(worker=worker, size=transport.batch_size, result=result)
            if batch is None:
                if handled:
                    continue  # every claimed email was cancelled, suppressed or failed; look for more
                break
        wait = batch_send(batch=batch, transport=transport, result=result, worker=worker)
        if wait:
            # A 429 is about our whole account, not this batch: every further call would be refused too.
            if time.monotonic() + wait >= deadline:
                break
            sleep(wait)
            result.waited_seconds += wait
    enrollments_complete_finished(enrollment_ids=result.touched_enrollments)
    email_events_link_recent_unmatched()
    return result


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
