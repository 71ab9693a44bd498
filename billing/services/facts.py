"""Recording one fact (billing/services/__init__.py explains the keys): a timeline entry, optionally a domain event
and a stage move, all under the same key."""

from datetime import datetime

from customers import events
from customers.models import Customer, TimelineSource
from customers.services import customer_try_move_stage, timeline_event_record


def timestamp_key(value: datetime | None) -> str:
    """A datetime as it appears in a fact's key: unix seconds, or "none"."""
    return str(int(value.timestamp())) if value else "none"


def fact_record(
    *,
    customer: Customer,
    key: str,
    kind: str,
    summary: str,
    occurred_at: datetime,
    object_type: str,
    object_id_: str,
    domain_event: str | None = None,
    payload: dict | None = None,
    to_stage: str | None = None,
) -> bool:
    """Record one fact: a timeline entry, optionally a domain event and a stage move, all under the same key.
    Returns whether the timeline entry is new (False: this fact was already known)."""
    recorded = timeline_event_record(
        customer=customer,
        source=TimelineSource.STRIPE,
        source_key=key,
        kind=kind,
        occurred_at=occurred_at,
        summary=summary,
        payload=payload or {},
        object_type=object_type,
        object_id=object_id_,
    )
    if domain_event:
        events.domain_event_publish(
            name=domain_event, key=key, customer=customer, payload=payload or {}, occurred_at=occurred_at
        )
    if to_stage:
        customer_try_move_stage(
            customer=customer, to_stage=to_stage, cause=kind, occurred_at=occurred_at, source_key=key
        )
    return recorded.created


def stages_move_through(customer: Customer, stages: list[str], *, cause: str, occurred_at: datetime, key: str) -> None:
    """Move through several stages in order (discovery -> purchase -> onboarding); refused steps are skipped."""
    for stage in stages:
        customer_try_move_stage(
            customer=customer, to_stage=stage, cause=cause, occurred_at=occurred_at, source_key=f"{key}:{stage}"
        )
