"""Who a marketing email to a segment would reach: the ONE definition a send to a segment and the segment's count
share, so the count the page shows is exactly the number a send would enqueue at that moment.

The segment's members (marketing.selectors.segment_members) whom marketing email may reach by automations' own
rules: without a topic, automations.email_state.customers_marketing_allowed (an address, `opt_in_confirmed`, no
suppression of any kind); with a topic, automations.marketing_audience.marketing_recipients, which adds the topic
choice and the frequency cap (the same rules the send gate applies at claim time). Quiet hours only move a send, so
they do not change who is counted.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet, prefetch_related_objects

from automations.email_state import customers_marketing_allowed
from automations.marketing_audience import marketing_recipients
from customers.models import Customer, Topic

from .models import Segment
from .selectors import SegmentDefinitionError, segment_members


def segment_audience(
    *, segment: Segment, topic: Topic | None = None, at: datetime, ignore_frequency_cap: bool = False
) -> QuerySet[Customer]:
    """The customers a marketing email of `topic` to `segment` would go to at `at`: one query when evaluated.
    Raises marketing.selectors.SegmentDefinitionError for a segment that cannot be evaluated."""
    members = segment_members(segment=segment, at=at)
    if topic is None:
        return customers_marketing_allowed(customers=members)
    return marketing_recipients(customers=members, topic=topic, at=at, ignore_frequency_cap=ignore_frequency_cap)


@dataclass
class SegmentSummary:
    """What the segment's page says: how many customers a marketing email would reach now, a sample of them, and how
    many match the conditions (the difference is consent and suppressions). `problem` instead when it cannot be
    evaluated."""

    audience: int = 0
    matching: int = 0
    sample: list[Customer] = field(default_factory=list)
    problem: str = ""


def segment_summary(*, segment: Segment, at: datetime, sample_size: int = 20) -> SegmentSummary:
    """Three queries (the conditions loaded with the segment): the audience counted, a sample of it (newest
    customers first), and the customers matching."""
    prefetch_related_objects([segment], "conditions")  # once, for both queries (nothing when already loaded)
    try:
        audience = segment_audience(segment=segment, at=at)
        members = segment_members(segment=segment, at=at)
    except SegmentDefinitionError as exc:
        return SegmentSummary(problem=str(exc))
    return SegmentSummary(
        audience=audience.count(),
        sample=list(audience.order_by("-created_at", "-id")[:sample_size]),
        matching=members.count(),
    )
