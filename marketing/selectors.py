"""Reads of segments: who matches one at a moment, and what its page shows. Each is a fixed number of queries,
whatever the number of customers (the conditions compile to one query: marketing/conditions.py)."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet

from customers.models import Customer

from .conditions import definition_q
from .models import Segment, SegmentCondition


class SegmentDefinitionError(ValueError):
    """A stored segment that cannot be evaluated (a condition damaged outside the forms); the message is for staff."""


def segment_list() -> QuerySet[Segment]:
    """Segments with their conditions (in order) and their author loaded."""
    return Segment.objects.select_related("created_by").prefetch_related(
        Prefetch("conditions", queryset=SegmentCondition.objects.order_by("id"))
    )


def segment_members(*, segment: Segment, at: datetime) -> QuerySet[Customer]:
    """The customers the segment's conditions match at `at`, before any question of consent or suppression. Raises
    SegmentDefinitionError for a condition that is not one of ours."""
    conditions = [(condition.field, condition.operator, condition.value) for condition in segment.conditions.all()]
    try:
        matching = definition_q(match=segment.match, conditions=conditions, at=at)
    except ValidationError as exc:
        raise SegmentDefinitionError("; ".join(exc.messages)) from None
    return Customer.objects.filter(matching)
