"""The funnel, as the dashboard (backoffice/dashboard.py) and the Funnel page (customers/admin.py) both show it: the
customers in each stage now, and the moves into each stage over whole UTC days from the daily roll-up
(customers/rollups.py), each count linking to the customer list of the customers behind it."""

from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode

from django.urls import reverse

from . import list_filters, selectors
from .lifecycle import ONBOARDING_SETTLE_AFTER, Stage
from .rollups import FUNNEL_STEPS

FUNNEL_STAGES = {stage for stage, _ in FUNNEL_STEPS if stage != Stage.DISCOVERY}

# How long a stage-to-stage move can take: a conversion is measured over the customers who entered at least this long
# ago (the dashboard's "Stage to stage"), so a period shorter than this shows "not measurable yet", not 0%.
CONVERSION_TAKES = {Stage.ONBOARDING: ONBOARDING_SETTLE_AFTER}


def conversion_by(*, stage: str, since: datetime, last_day) -> tuple[int, int]:
    """(moves into `stage`, of those moved on) over whole UTC days from `since` to `last_day`: one query."""
    moves = selectors.stage_moves(first_day=since.astimezone(UTC).date(), last_day=last_day)
    return moves.entered.get(stage, 0), moves.moved_on.get(stage, 0)


def period_start(*, days: int, now: datetime) -> datetime:
    """The last `days` days are whole UTC days: today and the days-1 before it, from midnight. The day-by-day figures
    then cover the period exactly, and every section counts the same span."""
    return datetime.combine(now.astimezone(UTC).date() - timedelta(days=days - 1), time.min, tzinfo=UTC)


def funnel_rows(*, since: datetime, until: datetime) -> tuple[list[dict], selectors.StageMoves]:
    """One row per stage in funnel order (stage, now, now_url, entered, entered_url), and the period's moves. Two
    queries, whatever the number of customers."""
    moves = selectors.stage_moves(first_day=since.astimezone(UTC).date(), last_day=until.astimezone(UTC).date())
    changelist = reverse("admin:customers_customer_changelist")
    labels = dict(Stage.choices)
    rows = [
        {
            "stage": labels[stage],
            "now": count,
            "now_url": f"{changelist}?{urlencode({'lifecycle_stage__exact': stage})}",
            "entered": moves.entered.get(stage, 0),
            # Onward moves are kept for the funnel's steps only (rollups.FUNNEL_STEPS): other stages show none.
            "moved_on": moves.moved_on.get(stage, 0) if stage in FUNNEL_STAGES else None,
            # A customer arrives in Discovery when first recorded, without a move (customers/rollups.py).
            "entered_url": list_filters.created_url(since=since, until=until)
            if stage == Stage.DISCOVERY
            else list_filters.entered_stage_url(stage=stage, since=since, until=until),
        }
        for stage, count in selectors.stage_counts()
    ]
    return rows, moves
