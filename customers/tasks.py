"""django-q2 entry points: take ids, call one service, safe to run twice."""

from .events import domain_event_dispatch, domain_events_drain
from .services import customers_onboarding_settle


def domain_event_dispatch_task(event_id: int) -> bool:
    """One event (kept for tasks already on the broker when this code was deployed, and for staff re-dispatch)."""
    return domain_event_dispatch(event_id=event_id)


def domain_events_drain_task() -> int:
    """Woken by publishes (at most one waiting on the broker): dispatch every due event."""
    return domain_events_drain()


def domain_events_dispatch_pending() -> int:
    """Schedule (every minute): dispatch what a lost wake-up, a crash or a failing handler's backoff left due. The
    wake-up flag stays as it is: a drain it enqueued may still be waiting on the broker."""
    return domain_events_drain(woken=False)


def onboarding_settle_task() -> int:
    """Schedule (daily): customers settled in Onboarding move to Active (customers/lifecycle.py)."""
    return customers_onboarding_settle()
