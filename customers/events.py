"""Domain events: how apps tell each other what happened without reaching into each other's internals.

Billing announces "payment failed for customer X"; automations decides what that means for email. The mechanism is
a plain function registry over a durable outbox (`customers.models.DomainEvent`):

- `domain_event_publish(...)` is called by a service inside its transaction. It stores the event under an
  idempotency key (a second publish of the same key is a no-op) and, on commit, wakes the dispatcher (one drain task
  for any number of events, see `dispatch_wake`).
- `@subscriber("payment.failed")` registers a handler. Apps register theirs in `AppConfig.ready()` by importing
  their `subscribers` module. A handler gets the `DomainEvent` row and must be safe to run twice (dispatch is at
  least once); it writes through its own app's services. `@subscriber(..., batch=True)` registers a handler that
  gets a list of events instead (a drain's batch, the events of one customer in their order), so that it can load
  and write for all of them at once; it must leave the same result as being called with each event alone, in order.
- Dispatch claims a batch of due events and runs each handler in its own savepoint: one failing handler does not
  undo the others. A batch handler that fails is run again event by event, so one bad event does not hold back
  the rest of its batch; the event stays pending with its error and a backoff until every handler has succeeded or
  the attempts run out.

The event names are listed here so publishers and subscribers agree on one vocabulary.
"""

import logging
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core.retry import next_attempt_at

from .models import Customer, DispatchWakeup, DomainEvent

logger = logging.getLogger(__name__)

# The vocabulary. Payloads are JSON; each publisher documents what it puts in them.
SUBSCRIPTION_CREATED = "subscription.created"
SUBSCRIPTION_UPDATED = "subscription.updated"
SUBSCRIPTION_CANCEL_SCHEDULED = "subscription.cancel_scheduled"
SUBSCRIPTION_CANCELED = "subscription.canceled"
SUBSCRIPTION_TRIAL_ENDING = "subscription.trial_will_end"
# The retention changes (billing/services/subscription_retention.py): payments paused with Stripe's pause_collection
# and resumed, a discount applied, the price changed. Payloads: subscription and product ids and what changed.
SUBSCRIPTION_PAUSED = "subscription.paused"
SUBSCRIPTION_RESUMED = "subscription.resumed"
SUBSCRIPTION_DISCOUNT_APPLIED = "subscription.discount_applied"
SUBSCRIPTION_PLAN_CHANGED = "subscription.plan_changed"
PAYMENT_FAILED = "payment.failed"
PAYMENT_RECOVERED = "payment.recovered"
PAYMENT_SUCCEEDED = "payment.succeeded"
DISPUTE_OPENED = "dispute.opened"
CHECKOUT_COMPLETED = "checkout.completed"
CUSTOMER_STAGE_CHANGED = "customer.stage_changed"
TRIAL_STARTED = "trial.started"
# A customer without an email address got one (payload: {"email": ...}); what was skipped for lack of one may start.
CUSTOMER_EMAIL_ADDED = "customer.email_added"

EVENT_NAMES: tuple[str, ...] = (
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_UPDATED,
    SUBSCRIPTION_CANCEL_SCHEDULED,
    SUBSCRIPTION_CANCELED,
    SUBSCRIPTION_TRIAL_ENDING,
    SUBSCRIPTION_PAUSED,
    SUBSCRIPTION_RESUMED,
    SUBSCRIPTION_DISCOUNT_APPLIED,
    SUBSCRIPTION_PLAN_CHANGED,
    PAYMENT_FAILED,
    PAYMENT_RECOVERED,
    PAYMENT_SUCCEEDED,
    DISPUTE_OPENED,
    CHECKOUT_COMPLETED,
    CUSTOMER_STAGE_CHANGED,
    TRIAL_STARTED,
    CUSTOMER_EMAIL_ADDED,
)

MAX_DISPATCH_ATTEMPTS = 10
# A failed event waits 2 min after its first attempt, then 4, 8, ... (core/retry.py); the cap is the wait before the
# last attempt, so it never shortens one.
DISPATCH_RETRY_BASE = timedelta(minutes=2)
DISPATCH_RETRY_CAP = timedelta(minutes=2 ** (MAX_DISPATCH_ATTEMPTS - 1))

# A handler takes one DomainEvent, or (registered with batch=True) a list of them.
Handler = Callable[[DomainEvent], None] | Callable[[list[DomainEvent]], None]
_handlers: dict[str, list[Handler]] = defaultdict(list)
_batch_handlers: set[Handler] = set()


def subscriber(*names: str, batch: bool = False) -> Callable[[Handler], Handler]:
    """Register a handler for one or more event names ("*" receives every event). With `batch=True` the handler
    gets a list of events (see the module's docstring)."""
    for name in names:
        if name != "*" and name not in EVENT_NAMES:
            raise ValueError(f"Unknown domain event {name!r}; add it to customers.events.EVENT_NAMES")

    def register(handler: Handler) -> Handler:
        if batch:
            _batch_handlers.add(handler)
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
    transaction.on_commit(_enqueue_dispatch)
    return event, True


# --- dispatch ---------------------------------------------------------------------------------------------------------
#
# Publishing does not enqueue one task per event: a burst of thousands of events would put thousands of tasks on the
# broker, each finding most of the work done. `dispatch_wake` enqueues a drain only when none is waiting (the
# `DispatchWakeup` row's flag, flipped with one UPSERT), and the drain dispatches due events until there are none, so
# the broker holds at most one waiting drain while any number of workers run one each.

WAKEUP_NAME = "customers.domain-events"
# A drain stops taking new events after this long and asks for a successor, so one task stays within django-q2's
# timeout (Q_TIMEOUT, 120 s by default).
DRAIN_SECONDS = 60.0
# A wake-up flag older than this was lost (the process died between setting it and enqueuing): set it again.
STALE_WAKEUP = timedelta(minutes=2)


def _enqueue_dispatch(*_args) -> None:
    """On commit of a publish: make sure a drain will run (a side effect: only from on_commit, or outside a
    transaction)."""
    dispatch_wake()


def dispatch_wake() -> bool:
    """Enqueue a drain task unless one is already waiting on the broker. Returns whether it enqueued one."""
    now = timezone.now()
    table = DispatchWakeup._meta.db_table
    with connection.cursor() as cursor:
        # One statement, so two publishers racing here cannot both enqueue: only the one that flipped the flag (or
        # found it stale) gets a row back.
        cursor.execute(
            f"""
            INSERT INTO {table} (name, requested_at) VALUES (%s, %s)
            ON CONFLICT (name) DO UPDATE SET requested_at = excluded.requested_at
            WHERE {table}.requested_at IS NULL OR {table}.requested_at < %s
            RETURNING id
            """,  # noqa: S608 (the table name is the model's; every value is a parameter)
            [WAKEUP_NAME, now, now - STALE_WAKEUP],
        )
        flipped = cursor.fetchone() is not None
    if flipped:
        from django_q.tasks import async_task

        async_task("customers.tasks.domain_events_drain_task", task_name="customers:domain-events-drain")
    return flipped


def _wakeup_consume() -> None:
    DispatchWakeup.objects.filter(name=WAKEUP_NAME).update(requested_at=None)


def domain_events_drain(
    *,
    time_budget: float = DRAIN_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    woken: bool = True,
    batch_size: int | None = None,
) -> int:
    """Dispatch due events, a batch per transaction, until none is due or the time budget is spent. Returns how many
    were dispatched. Several drains may run at once (one per worker): each claims its batch with SKIP LOCKED.
    `woken`: this is the drain a wake-up enqueued (not the minute sweep), so it takes the wake-up flag."""
    if woken:
        _wakeup_consume()  # from here on, a new publish asks for another drain, so nothing published now is missed
    deadline = clock() + time_budget
    dispatched = 0
    skipped: set[int] = set()
    while clock() < deadline:
        outcome = _dispatch_next_due(exclude=skipped, batch_size=batch_size or DISPATCH_BATCH)
        if outcome is None:
            return dispatched
        for event_id, done in outcome.items():
            dispatched += done
            if not done:
                skipped.add(event_id)  # failed: its backoff is set; do not pick it again in this drain
    dispatch_wake()  # out of time with work left: a successor carries on
    return dispatched


# Events claimed and dispatched in one transaction. Larger batches cost fewer queries per event but hold their rows
# (the events, the customers' running enrollments, their subscriptions) locked for longer.
DISPATCH_BATCH = 100


def _dispatch_next_due(*, exclude: set[int], batch_size: int) -> dict[int, bool] | None:
    with transaction.atomic():
        batch = list(
            DomainEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("customer")
            .filter(dispatched_at__isnull=True, next_attempt_at__lte=timezone.now())
            .exclude(pk__in=exclude)
            .order_by("next_attempt_at", "id")[:batch_size]
        )
        if not batch:
            return None
        return _dispatch_locked(batch)


def domain_event_dispatch(*, event_id: int) -> bool:
    """Run every handler of one pending event. Returns True when the event is fully dispatched.

    The row lock (SKIP LOCKED) keeps two workers from dispatching the same event at the same moment; handlers are
    still written to be idempotent because a crash after a handler's commit and before ours re-runs it. Only the
    event's own row is locked (`of=("self",)`): locking the joined customer row too would make every other event of
    the same customer skip and wait for the sweep while one of them runs.
    """
    with transaction.atomic():
        event = (
            DomainEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("customer")
            .filter(pk=event_id, dispatched_at__isnull=True)
            .first()
        )
        if event is None:
            return False
        return _dispatch_locked([event])[event.pk]


def _dispatch_locked(events: list[DomainEvent]) -> dict[int, bool]:
    """Run the handlers of a batch of locked events (in the order given) and record the outcome of each. Returns
    {event id: fully dispatched}."""
    errors: dict[int, list[str]] = defaultdict(list)
    # Each handler with the events it receives, handlers in the order of registration.
    work: dict[Handler, list[DomainEvent]] = {}
    for event in events:
        for handler in handlers_for(event.name):
            work.setdefault(handler, []).append(event)
    for handler, handled in work.items():
        if handler in _batch_handlers:
            try:
                with transaction.atomic():
                    handler(handled)
                continue
            except Exception:
                if len(handled) == 1:
                    _handler_failed(handler, handled[0], errors)
                    continue
                # Rolled back whole: run it again one event at a time, so only the bad event stays pending.
                logger.warning("Domain events: batch handler %s failed; one by one", handler.__qualname__)
        for event in handled:
            try:
                with transaction.atomic():
                    handler([event] if handler in _batch_handlers else event)
            except Exception:  # one handler's failure must not stop the others
                _handler_failed(handler, event, errors)

    now = timezone.now()
    done = [event.pk for event in events if event.pk not in errors]
    if done:
        DomainEvent.objects.filter(pk__in=done).update(
            attempts=F("attempts") + 1, dispatched_at=now, next_attempt_at=None, last_error=""
        )
    for event in events:
        if event.pk in errors:
            event.attempts += 1
            event.last_error = "\n".join(errors[event.pk])
            event.next_attempt_at = (
                next_attempt_at(event.attempts, base=DISPATCH_RETRY_BASE, cap=DISPATCH_RETRY_CAP, now=now)
                if event.attempts < MAX_DISPATCH_ATTEMPTS
                else None
            )
            event.save(update_fields=["attempts", "last_error", "next_attempt_at"])
    return {event.pk: event.pk not in errors for event in events}


def _handler_failed(handler: Handler, event: DomainEvent, errors: dict[int, list[str]]) -> None:
    logger.exception("Domain event %s: handler %s failed", event.key, handler.__qualname__)
    errors[event.pk].append(f"{handler.__module__}.{handler.__qualname__}: {sys.exc_info()[1]!r}")
