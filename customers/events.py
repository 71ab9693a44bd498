"""Domain events: how apps tell each other what happened without reaching into each other's internals.

Billing announces "payment failed for customer X"; automations decides what that means for email. The mechanism is
a plain function registry over a durable outbox (`customers.models.DomainEvent`):

- `domain_event_publish(...)` is called by a service inside its transaction. It stores the event under an
  idempotency key (a second publish of the same key is a no-op) and, on commit, enqueues its dispatch.
- `@subscriber("payment.failed")` registers a handler. Apps register theirs in `AppConfig.ready()` by importing
  their `subscribers` module. A handler gets the `DomainEvent` row and must be safe to run twice (dispatch is at
  least once); it writes through its own app's services.
- Dispatch runs each handler in its own savepoint: one failing handler does not undo the others, and the event stays
  pending with its error and a backoff until every handler has succeeded or the attempts run out.

The event names are listed here so publishers and subscribers agree on one vocabulary.
"""

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Customer, DomainEvent

logger = logging.getLogger(__name__)

# The vocabulary. Payloads are JSON; each publisher documents what it puts in them.
SUBSCRIPTION_CREATED = "subscription.created"
SUBSCRIPTION_UPDATED = "subscription.updated"
SUBSCRIPTION_CANCEL_SCHEDULED = "subscription.cancel_scheduled"
SUBSCRIPTION_CANCELED = "subscription.canceled"
SUBSCRIPTION_TRIAL_ENDING = "subscription.trial_will_end"
PAYMENT_FAILED = "payment.failed"
PAYMENT_RECOVERED = "payment.recovered"
PAYMENT_SUCCEEDED = "payment.succeeded"
DISPUTE_OPENED = "dispute.opened"
CHECKOUT_COMPLETED = "checkout.completed"
CUSTOMER_STAGE_CHANGED = "customer.stage_changed"
TRIAL_STARTED = "trial.started"

EVENT_NAMES: tuple[str, ...] = (
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_UPDATED,
    SUBSCRIPTION_CANCEL_SCHEDULED,
    SUBSCRIPTION_CANCELED,
    SUBSCRIPTION_TRIAL_ENDING,
    PAYMENT_FAILED,
    PAYMENT_RECOVERED,
    PAYMENT_SUCCEEDED,
    DISPUTE_OPENED,
    CHECKOUT_COMPLETED,
    CUSTOMER_STAGE_CHANGED,
    TRIAL_STARTED,
)

MAX_DISPATCH_ATTEMPTS = 10

Handler = Callable[[DomainEvent], None]
_handlers: dict[str, list[Handler]] = defaultdict(list)


def subscriber(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler for one or more event names ("*" receives every event)."""
    for name in names:
        if name != "*" and name not in EVENT_NAMES:
            raise ValueError(f"Unknown domain event {name!r}; add it to customers.events.EVENT_NAMES")

    def register(handler: Handler) -> Handler:
        for name in names:
            if handler not in _handlers[name]:
                _handlers[name].append(handler)
        return handler

    return register


def handlers_for(name: str) -> list[Handler]:
    return [*_handlers.get(name, []), *_handlers.get("*", [])]


def domain_event_publish(
    *,
    name: str,
    key: str,
    customer: Customer,
    payload: dict | None = None,
    occurred_at: datetime | None = None,
) -> tuple[DomainEvent, bool]:
    """Store a domain event once per key and dispatch it after commit. Returns (event, created)."""
    if name not in EVENT_NAMES:
        raise ValueError(f"Unknown domain event {name!r}")
    try:
        with transaction.atomic():
            event = DomainEvent.objects.create(
                name=name,
                key=key,
                customer=customer,
                payload=payload or {},
                occurred_at=occurred_at or timezone.now(),
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        return DomainEvent.objects.get(key=key), False
    transaction.on_commit(lambda: _enqueue_dispatch(event.pk))
    return event, True


def _enqueue_dispatch(event_id: int) -> None:
    from django_q.tasks import async_task

    async_task("customers.tasks.domain_event_dispatch_task", event_id, task_name=f"domain-event:{event_id}")


def domain_event_dispatch(*, event_id: int) -> bool:
    """Run every handler of one pending event. Returns True when the event is fully dispatched.

    The row lock (SKIP LOCKED) keeps two workers from dispatching the same event at the same moment; handlers are
    still written to be idempotent because a crash after a handler's commit and before ours re-runs it.
    """
    with transaction.atomic():
        event = (
            DomainEvent.objects.select_for_update(skip_locked=True)
            .select_related("customer")
            .filter(pk=event_id, dispatched_at__isnull=True)
            .first()
        )
        if event is None:
            return False
        errors = []
        for handler in handlers_for(event.name):
            try:
                with transaction.atomic():
                    handler(event)
            except Exception as exc:  # one handler's failure must not stop the others
                logger.exception("Domain event %s: handler %s failed", event.key, handler.__qualname__)
                errors.append(f"{handler.__module__}.{handler.__qualname__}: {exc!r}")
        event.attempts += 1
        now = timezone.now()
        if errors:
            event.last_error = "\n".join(errors)
            event.next_attempt_at = (
                now + timedelta(minutes=2**event.attempts) if event.attempts < MAX_DISPATCH_ATTEMPTS else None
            )
        else:
            event.dispatched_at = now
            event.next_attempt_at = None
            event.last_error = ""
        event.save(update_fields=["attempts", "last_error", "next_attempt_at", "dispatched_at"])
        return not errors


def pending_domain_event_ids(*, now: datetime | None = None, grace: timedelta = timedelta(seconds=30)) -> list[int]:
    """Events a crash or a failed handler left behind and whose backoff is over."""
    now = now or timezone.now()
    return list(
        DomainEvent.objects.filter(dispatched_at__isnull=True, next_attempt_at__lte=now - grace)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:500]
    )
