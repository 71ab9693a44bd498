"""One store for incoming webhook deliveries, whatever the provider.

    view     -> verify the provider's signature on the raw body -> check the body parses
             -> webhook_delivery_store(provider=, dedupe_key=, headers=, body=) -> 2xx
                (one row per (provider, dedupe_key); the processing task is enqueued on commit)
    task     -> webhook_delivery_process(delivery_id=): lock the row (SKIP LOCKED), call the provider's processor
                from the registry in a savepoint, mark it processed, or keep the error and count the attempt.
    admin    -> "reprocess" enqueues the task again for the chosen deliveries.

A provider registers its processor with `@webhook_processor("mautic")`. Processors must be safe to run twice: a
reprocess from the admin runs them again on the same body.
"""

import hashlib
import logging
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import DeliveryStatus, WebhookDelivery

logger = logging.getLogger(__name__)

Processor = Callable[[WebhookDelivery], None]
_processors: dict[str, Processor] = {}

# Request headers worth keeping with a delivery (never Authorization or cookies).
KEPT_HEADERS = ("content-type", "user-agent", "webhook-signature", "x-forwarded-for")


def webhook_processor(provider: str) -> Callable[[Processor], Processor]:
    def register(processor: Processor) -> Processor:
        _processors[provider] = processor
        return processor

    return register


def body_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def kept_headers(headers) -> dict[str, str]:
    return {name: headers[name] for name in KEPT_HEADERS if name in headers}


def webhook_delivery_store(
    *, provider: str, dedupe_key: str, headers: dict[str, str], body: bytes, refused_fields: list[str] | None = None
) -> tuple[WebhookDelivery, bool]:
    """Store a delivery once per (provider, dedupe_key) and enqueue its processing on commit. `refused_fields` names
    the fields that failed their check at the edge (kept on the delivery for staff; the rest of it applies).

    Returns (delivery, created); a repeat returns the stored row and enqueues nothing.
    """
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                provider=provider,
                dedupe_key=dedupe_key[:255],
                headers=headers,
                body=body,
                refused_fields=refused_fields or [],
            )
    except IntegrityError:
        return WebhookDelivery.objects.get(provider=provider, dedupe_key=dedupe_key[:255]), False
    transaction.on_commit(lambda: webhook_delivery_enqueue(delivery_id=delivery.pk))
    return delivery, True


def webhook_delivery_reject(
    *, provider: str, dedupe_key: str, headers: dict[str, str], body: bytes, reason: str
) -> WebhookDelivery:
    """Keep a correctly signed delivery whose body is malformed, with the reason, without processing it (the view
    answers 400). Once per (provider, dedupe_key) like any delivery."""
    try:
        with transaction.atomic():
            return WebhookDelivery.objects.create(
                provider=provider,
                dedupe_key=dedupe_key[:255],
                headers=headers,
                body=body,
                status=DeliveryStatus.REJECTED,
                last_error=reason[:5000],
            )
    except IntegrityError:
        return WebhookDelivery.objects.get(provider=provider, dedupe_key=dedupe_key[:255])


def webhook_delivery_enqueue(*, delivery_id: int) -> None:
    from django_q.tasks import async_task

    async_task(
        "integrations.tasks.webhook_delivery_process_task", delivery_id, task_name=f"webhook-delivery:{delivery_id}"
    )


def webhook_delivery_process(*, delivery_id: int) -> bool:
    """Process one stored delivery. Returns True when it is processed (now or before)."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update(skip_locked=True).filter(pk=delivery_id).first()
        if delivery is None:
            return False  # another worker has it
        if delivery.status == DeliveryStatus.PROCESSED:
            return True
        processor = _processors.get(delivery.provider)
        delivery.attempts += 1
        try:
            if processor is None:
                raise LookupError(f"No webhook processor registered for {delivery.provider!r}")
            with transaction.atomic():
                processor(delivery)
        except Exception as exc:  # kept on the row and shown in the admin; reprocess retries
            logger.exception("Webhook delivery %s (%s) failed", delivery.pk, delivery.provider)
            delivery.status = DeliveryStatus.FAILED
            delivery.last_error = f"{type(exc).__name__}: {exc}"[:5000]
            delivery.save(update_fields=["status", "attempts", "last_error"])
            return False
        delivery.status = DeliveryStatus.PROCESSED
        delivery.processed_at = timezone.now()
        delivery.last_error = ""
        delivery.save(update_fields=["status", "attempts", "last_error", "processed_at"])
        return True


def webhook_delivery_reprocess(*, delivery_ids: list[int]) -> int:
    """From the admin: run the processor again on each delivery (processed ones included, e.g. after a fix)."""
    with transaction.atomic():
        count = WebhookDelivery.objects.filter(pk__in=delivery_ids).update(status=DeliveryStatus.RECEIVED)
        for delivery_id in delivery_ids:
            transaction.on_commit(lambda delivery_id=delivery_id: webhook_delivery_enqueue(delivery_id=delivery_id))
    return count
