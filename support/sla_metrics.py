"""Response times in support hours next to wall-clock ones, per category and per staff member, over the staff
responses answered in a period (TicketResponse rows, written by support/sla.py)."""

from datetime import datetime
from statistics import median

from .models import TicketCategory
from .sla_models import ResponseKind, TicketResponse


def _minutes(seconds: list[int]) -> float | None:
    return round(median(seconds) / 60, 1) if seconds else None


def _row(label: str, responses: list[TicketResponse]) -> dict:
    row: dict = {"label": label, "responses": len(responses), "breached": sum(r.breached for r in responses)}
    for kind in ResponseKind:
        of_kind = [r for r in responses if r.kind == kind]
        row[kind.value] = {
            "count": len(of_kind),
            "support_minutes": _minutes([r.support_seconds for r in of_kind]),
            "wall_minutes": _minutes([r.wall_seconds for r in of_kind]),
        }
    return row


def sla_metrics(*, since: datetime, until: datetime) -> dict:
    """Median minutes to the first and to the next responses, in support hours and on the wall clock, overall, per
    category and per staff member (who wrote the response), for responses answered in [since, until)."""
    responses = list(
        TicketResponse.objects.filter(answered_at__gte=since, answered_at__lt=until).select_related("ticket")
    )
    by_category = {c.value: [] for c in TicketCategory}
    by_staff: dict[str, list[TicketResponse]] = {}
    for response in responses:
        by_category[response.ticket.category].append(response)
        by_staff.setdefault(response.responder_name or response.responder_discord_id or "?", []).append(response)
    return {
        "overall": _row("All tickets", responses),
        "categories": [_row(c.label, by_category[c.value]) for c in TicketCategory],
        "staff": [_row(name, rows) for name, rows in sorted(by_staff.items())],
    }
