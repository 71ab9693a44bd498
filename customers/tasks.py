"""django-q2 entry points: take ids, call one service, safe to run twice."""

from .events import domain_event_dispatch, pending_domain_event_ids


def domain_event_dispatch_task(event_id: int) -> bool:
    return domain_event_dispatch(event_id=event_id)


def domain_events_dispatch_pending() -> int:
    """Schedule: dispatch events a crash or a failing handler left behind."""
    dispatched = 0
    for event_id in pending_domain_event_ids():
        dispatched += domain_event_dispatch(event_id=event_id)
    return dispatched
