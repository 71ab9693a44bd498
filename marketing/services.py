"""Writes of segments. The admin edits segments through its forms, which check each condition with the same
`condition_clean`; the API creates them here."""

from typing import Any

from django.db import transaction

from .conditions import condition_clean
from .models import Segment, SegmentCondition


@transaction.atomic
def segment_create(
    *, name: str, description: str = "", match: str, conditions: list[dict[str, Any]], created_by=None
) -> Segment:
    """A segment with its conditions ({"field", "operator", "value"} each), all checked before anything is written:
    a bad condition raises ValidationError and nothing is saved."""
    cleaned = [
        SegmentCondition(
            field=condition["field"],
            operator=condition["operator"],
            value=condition_clean(field=condition["field"], operator=condition["operator"], value=condition["value"]),
        )
        for condition in conditions
    ]
    segment = Segment(name=name, description=description, match=match, created_by=created_by)
    segment.full_clean()
    segment.save()
    for condition in cleaned:
        condition.segment = segment
    SegmentCondition.objects.bulk_create(cleaned)
    return segment
