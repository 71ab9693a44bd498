"""Processing one stored Stripe event, exactly once per event id, in a task (billing.tasks.stripe_event_process_task).

    1. fetch, before any lock (_fetch): dj-stripe's processing (its Event row, the re-fetch of the object from the
       Stripe API and the sync of its mirror, in dj-stripe's own transaction), then the handler's `fetch` (anything
       else the handler needs from Stripe, handlers.py). No row of ours is locked while Stripe answers.
    2. apply, in one transaction (stripe_event_process): lock the processing row (SKIP LOCKED), then in a savepoint
       the handler's `apply`, which reads the mirror and calls billing.services. A failure of either step is kept on
       the row; the attempt, the backoff and giving up are the one routine every stored incoming delivery uses
       (integrations/webhooks/store.py `delivery_attempt`).

Two workers may fetch the same event at once (a retry racing a slow first run): dj-stripe's Event.process and the
mirror's syncs are idempotent, and only the worker that gets the lock applies.
"""

import json
import traceback
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from djstripe import models as djstripe_models

from integrations.webhooks.store import delivery_attempt

from ..models import EventProcessingStatus, StripeEventProcessing
from ..stripe_objects import timestamp_to_datetime
from .handlers import HANDLERS

DUE = [EventProcessingStatus.PENDING, EventProcessingStatus.FAILED]


def stripe_event_process(*, event_id: str) -> str | None:
    """Process one stored event if it is pending or failed; returns the new status, or None when there was nothing
    to do (already processed, given up, or another worker holds it right now)."""
    stored = StripeEventProcessing.objects.filter(event_id=event_id, status__in=DUE).select_related("trigger").first()
    if stored is None:
        return None
    data = json.loads(stored.trigger.body) if stored.trigger else None
    fetched, fetch_failure = None, None
    if data is not None:
        try:
            fetched = _fetch(data)
        except Exception as exc:  # kept and raised again in the attempt below, so it counts like any failure
            fetch_failure = exc
    with transaction.atomic():
        processing = (
            StripeEventProcessing.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("trigger")
            .filter(event_id=event_id, status__in=DUE)
            .first()
        )
        if processing is None:
            return None
        trigger = processing.trigger
        failure: list[str] = []

        def run() -> None:
            try:
                if trigger is None or data is None:
                    raise RuntimeError("The stored delivery of this event is gone")
                if fetch_failure is not None:
                    raise fetch_failure
                _apply(data, fetched)
            except Exception as exc:
                failure[:] = [str(exc)[:128], traceback.format_exc()]
                raise

        label = f"Stripe event {event_id} ({processing.event_type})"
        if delivery_attempt(processing, run, max_attempts=settings.BILLING_EVENT_MAX_ATTEMPTS, label=label):
            trigger.exception, trigger.traceback, trigger.processed = "", "", True
            trigger.event = djstripe_models.Event.objects.filter(id=event_id).first()
            trigger.save(update_fields=["exception", "traceback", "processed", "event", "updated"])
        elif trigger is not None:
            trigger.exception, trigger.traceback = failure
            trigger.processed = False
            trigger.save(update_fields=["exception", "traceback", "processed", "updated"])
        return processing.status


def _fetch(data: dict) -> Any:
    """dj-stripe's processing (creates its Event, re-fetches and syncs the object), then the handler's fetch."""
    event = djstripe_models.Event.objects.filter(id=data["id"]).first()
    if event is None:
        event = djstripe_models.Event.process(data)
    else:
        # Reprocessing: dj-stripe's Event.process would return the stored Event without syncing anything.
        event.invoke_webhook_handlers()
    handler = HANDLERS.get(event.type)
    return handler.fetch(event) if handler is not None and handler.fetch is not None else None


def _apply(data: dict, fetched: Any) -> None:
    event = djstripe_models.Event.objects.get(id=data["id"])
    handler = HANDLERS.get(event.type)
    if handler is not None:
        handler.apply(event, timestamp_to_datetime(data.get("created")) or timezone.now(), fetched)
