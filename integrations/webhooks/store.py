"""One store for incoming webhook deliveries, whatever the provider, and the one attempt/retry routine.

    view     -> StoredWebhookView (views.py): size, signature, parse
             -> inbound_webhook_store(provider=, dedupe_key=, headers=, body=, refused_fields=) -> 2xx
                (one row per (provider, dedupe_key); the processing task is enqueued on commit)
             or, signed but malformed (Mautic keeps those itself): inbound_webhook_reject(..., reason=) -> 400
    task     -> inbound_webhook_process(delivery_id=): lock the row (SKIP LOCKED), run the provider's processor in
                a savepoint through delivery_attempt(): processed, or the error kept and the next attempt scheduled
                with core/retry.py (given up as "dead" after MAX_ATTEMPTS).
    schedule -> inbound_webhooks_retry_due(): every minute, the failed deliveries whose backoff is over (and any
                received one whose enqueue was lost).
    admin    -> "reprocess" (admin.py) enqueues the task again for the chosen deliveries.

Stripe's processing rows (billing.StripeEventProcessing) share the state fields (models.InboundDeliveryState) and
delivery_attempt(), so both stores fail, back off and give up the same way.

A provider registers its processor with `@webhook_processor("mautic")`. Processors must be safe to run twice: a
reprocess from the admin runs them again on the same body.
"""

import hashlib
import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from core.retry import next_attempt_at

from ..models import DeliveryStatus, InboundWebhook

logger = logging.getLogger(__name__)

Processor = Callable[[InboundWebhook], None]
_processors: dict[str, Processor] = {}

# Request headers worth keeping with a delivery (never Authorization or cookies).
KEPT_HEADERS = ("content-type", "user-agent", "webhook-signature", "x-forwarded-for")

# The one retry schedule of stored deliveries: 1 min, 2, 4, ... at most 6 h apart; given up after MAX_ATTEMPTS.
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=6)
MAX_ATTEMPTS = 8
PENDING_GRACE = timedelta(minutes=5)


def webhook_processor(provider: str) -> Callable[[Processor], Processor]:
    def register(processor: Processor) -> Processor:
        _processors[provider] = processor
        return processor

    return register


def body_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def kept_headers(headers) -> dict[str, str]:
    return {name: headers[name] for name in KEPT_HEADERS if name in headers}


def delivery_attempt(row: models.Model, run: Callable[[], None], *, max_attempts: int, label: str) -> bool:
    """Run one processing attempt of a locked delivery row (InboundWebhook or StripeEventProcessing), inside the
    caller's transaction. The work runs in a savepoint, so a failure undoes its partial writes; the row then keeps
    the error and its next attempt time (or is given up as dead). Saves the row; returns whether it succeeded."""
    row.attempts += 1
    try:
        with transaction.atomic():
            run()
    except Exception as exc:  # any failure: kept on the row and shown in the admin; retried or reprocessed
        logger.exception("Incoming webhook %s failed", label)
        row.last_error = f"{type(exc).__name__}: {exc}"[:4000]
        give_up = row.attempts >= max_attempts
        row.status = DeliveryStatus.DEAD if give_up else DeliveryStatus.FAILED
        row.next_attempt_at = None if give_up else next_attempt_at(row.attempts, base=RETRY_BASE, cap=RETRY_CAP)
        row.save()
        return False
    row.status = DeliveryStatus.PROCESSED
    row.processed_at = timezone.now()
    row.next_attempt_at = None
    row.last_error = ""
    row.save()
    return True


def inbound_webhook_store(
    *, provider: str, dedupe_key: str, headers: dict[str, str], body: bytes, refused_fields: list[str] | None = None
) -> tuple[InboundWebhook, bool]:
    """Store a delivery once per (provider, dedupe_key) and enqueue its processing on commit. `refused_fields` names
    the fields that failed their check at the edge (kept on the delivery for staff; the rest of it applies).

    Returns (delivery, created); a repeat returns the stored row and enqueues nothing.
    """
    try:
        with transaction.atomic():
            delivery = InboundWebhook.objects.create(
                provider=provider,
                dedupe_key=dedupe_key[:255],
                headers=headers,
                body=body,
                refused_fields=refused_fields or [],
            )
    except IntegrityError:
        return InboundWebhook.objects.get(provider=provider, dedupe_key=dedupe_key[:255]), False
    transaction.on_commit(lambda: inbound_webhook_enqueue(delivery_id=delivery.pk))
    return delivery, True


def inbound_webhook_reject(
    *, provider: str, dedupe_key: str, headers: dict[str, str], body: bytes, reason: str
) -> InboundWebhook:
    """Keep a correctly signed delivery whose body is malformed, with the reason, without processing it (the view
    answers 400). Once per (provider, dedupe_key) like any delivery."""
    try:
        with transaction.atomic():
            return InboundWebhook.objects.create(
                provider=provider,
                dedupe_key=dedupe_key[:255],
                headers=headers,
                body=body,
                status=DeliveryStatus.REJECTED,
                last_error=reason[:5000],
            )
    except IntegrityError:
        return InboundWebhook.objects.get(provider=provider, dedupe_key=dedupe_key[:255])


def inbound_webhook_enqueue(*, delivery_id: int) -> None:
    from django_q.tasks import async_task

    async_task(
        "integrations.tasks.inbound_webhook_process_task", delivery_id, task_name=f"inbound-webhook:{delivery_id}"
    )


def inbound_webhook_process(*, delivery_id: int) -> bool:
    """Process one stored delivery. Returns True when it is processed (now or before)."""
    with transaction.atomic():
        delivery = InboundWebhook.objects.select_for_update(skip_locked=True).filter(pk=delivery_id).first()
        if delivery is None:
            return False  # another worker has it
        if delivery.status == DeliveryStatus.PROCESSED:
            return True
        processor = _processors.get(delivery.provider)

        def run() -> None:
            if processor is None:
                raise LookupError(f"No webhook processor registered for {delivery.provider!r}")
            processor(delivery)

        return delivery_attempt(
            delivery, run, max_attempts=MAX_ATTEMPTS, label=f"{delivery.provider} delivery {delivery.pk}"
        )


def inbound_webhooks_retry_due() -> int:
    """Schedule (every minute): process the failed deliveries whose backoff is over, and received ones that a lost
    enqueue (a crash between commit and enqueue) left for longer than PENDING_GRACE. Returns how many ran."""
    now = timezone.now()
    due = list(
        InboundWebhook.objects.filter(
            Q(status=DeliveryStatus.FAILED, next_attempt_at__lte=now)
            | Q(status=DeliveryStatus.RECEIVED, received_at__lte=now - PENDING_GRACE)
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:500]
    )
    for delivery_id in due:
        inbound_webhook_process(delivery_id=delivery_id)
    return len(due)


def inbound_webhook_reprocess(*, delivery_ids: list[int]) -> int:
    """From the admin: run the processor again on each delivery (processed ones included, e.g. after a fix)."""
    with transaction.atomic():
        count = InboundWebhook.objects.filter(pk__in=delivery_ids).update(
            status=DeliveryStatus.RECEIVED, next_attempt_at=None
        )
        for delivery_id in delivery_ids:
            transaction.on_commit(lambda delivery_id=delivery_id: inbound_webhook_enqueue(delivery_id=delivery_id))
    return count
