"""django-q2 entry points: take ids, call one service, safe to run twice."""

from django.utils import timezone

from . import selectors, webhooks


def stripe_event_process_task(event_id: str) -> str | None:
    return webhooks.stripe_event_process(event_id=event_id)


def stripe_events_retry_due() -> int:
    """Schedule (every minute): process events whose retry backoff is over, and pending ones a lost enqueue left."""
    done = 0
    for event_id in selectors.stripe_events_due(now=timezone.now()):
        done += webhooks.stripe_event_process(event_id=event_id) is not None
    return done


def stripe_sync_task() -> dict:
    """Schedule (daily 08:00 UTC): the Stripe subscription sync."""
    from .sync import stripe_sync_run

    return stripe_sync_run().as_dict()
