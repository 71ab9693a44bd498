"""django-q2 entry points: take ids, call one service, safe to run twice."""

import time

from django.conf import settings
from django.utils import timezone

from . import selectors
from .stripe_webhook.processing import stripe_event_process


def stripe_event_process_task(event_id: str) -> str | None:
    return stripe_event_process(event_id=event_id)


def stripe_events_retry_due() -> int:
    """Schedule (every minute): process events whose retry backoff is over, and pending ones a lost enqueue left."""
    done = 0
    for event_id in selectors.stripe_events_due(now=timezone.now()):
        done += stripe_event_process(event_id=event_id) is not None
    return done


def stripe_sync_task(starting_after: str | None = None) -> dict:
    """Schedule (daily 08:00 UTC): the Stripe subscription sync, in chunks that end well within django-q2's task
    timeout; each chunk enqueues the next from its last subscription id. A chunk run twice applies the same pages
    twice, which changes nothing."""
    from django_q.tasks import async_task

    from .sync import stripe_sync_run

    budget = settings.Q_CLUSTER.get("timeout", 120) / 2
    summary = stripe_sync_run(starting_after=starting_after, deadline=time.monotonic() + budget)
    if summary.next_starting_after:
        async_task(
            "billing.tasks.stripe_sync_task",
            summary.next_starting_after,
            task_name=f"stripe-sync-after:{summary.next_starting_after}",
        )
    return summary.as_dict()


def subscription_changes_retry_due() -> int:
    """Schedule (every 5 minutes): the pauses, discounts, plan moves and cancellations whose Stripe answer was lost,
    sent again under their own key (billing/retention/changes.py)."""
    from .retention.changes import changes_retry_due

    return changes_retry_due()
