"""The dashboard's daily roll-up of stage moves (StageMoveDay), so the funnel reads a few hundred rows, not every move.

customer_move_stage calls `stage_move_day_record` in the move's transaction; `stage_move_days_rebuild` recomputes
the whole table from StageTransition (the data migration, `manage.py rebuild_stage_rollup`, the bench) and gives the
same rows (tests/customers/test_rollups.py).

"Moved on": a move into stage S counts as moved on once the customer's next move leaves S for one of S's next stages
in FUNNEL_STEPS. It is credited to the day of the move into S, so "of those who entered Trial that day, how many went
on to buy" stays on that day's row.
"""

from datetime import UTC, date, datetime

from django.db import connection, transaction

from .models import StageMoveDay, StageTransition

# The funnel's main path, each stage with the stages that count as "moved on" from it: a customer can buy without a
# trial, and a purchase leads to onboarding or straight to active (customers/lifecycle.py).
FUNNEL_STEPS: list[tuple[str, tuple[str, ...]]] = [
    ("discovery", ("trial", "purchase")),
    ("trial", ("purchase",)),
    ("purchase", ("onboarding", "active")),
    ("onboarding", ("active",)),
]
ONWARD = {(stage, next_stage) for stage, next_stages in FUNNEL_STEPS for next_stage in next_stages}

_ADD = """
INSERT INTO customers_stagemoveday AS day_row (day, from_stage, to_stage, moves, moved_on)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (day, from_stage, to_stage)
DO UPDATE SET moves = day_row.moves + EXCLUDED.moves, moved_on = day_row.moved_on + EXCLUDED.moved_on
"""


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _add(*, day: date, from_stage: str, to_stage: str, moves: int, moved_on: int) -> None:
    # One statement, so two transactions moving customers on the same day add up instead of racing a get_or_create.
    with connection.cursor() as cursor:
        cursor.execute(_ADD, [day, from_stage, to_stage, moves, moved_on])


def stage_move_day_record(*, transition: StageTransition) -> None:
    """Count a move just recorded (inside customer_move_stage's transaction, under the customer's row lock): one move
    on its day, and, when it leaves its stage onward, one "moved on" on the day the customer entered that stage."""
    _add(
        day=utc_day(transition.occurred_at),
        from_stage=transition.from_stage,
        to_stage=transition.to_stage,
        moves=1,
        moved_on=0,
    )
    if (transition.from_stage, transition.to_stage) not in ONWARD:
        return
    entry = (
        StageTransition.objects.filter(customer_id=transition.customer_id, occurred_at__lte=transition.occurred_at)
        .exclude(pk=transition.pk)
        .order_by("-occurred_at", "-id")
        .only("from_stage", "to_stage", "occurred_at")
        .first()
    )
    if entry is not None and entry.to_stage == transition.from_stage:
        _add(
            day=utc_day(entry.occurred_at),
            from_stage=entry.from_stage,
            to_stage=entry.to_stage,
            moves=0,
            moved_on=1,
        )


_REBUILD = """
INSERT INTO customers_stagemoveday (day, from_stage, to_stage, moves, moved_on)
SELECT (occurred_at AT TIME ZONE 'UTC')::date, from_stage, to_stage, count(*),
    count(*) FILTER (WHERE next_from = to_stage AND to_stage || '>' || next_to = ANY(%s))
FROM (
    SELECT occurred_at, from_stage, to_stage,
        lead(from_stage) OVER moves AS next_from, lead(to_stage) OVER moves AS next_to
    FROM customers_stagetransition
    WINDOW moves AS (PARTITION BY customer_id ORDER BY occurred_at, id)
) AS ordered
GROUP BY 1, 2, 3
"""


def stage_move_days_rebuild() -> int:
    """Recompute the roll-up from every StageTransition, in one transaction. Returns the number of day rows."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Moves made meanwhile wait for the lock, then add to the rebuilt rows.
        cursor.execute("LOCK TABLE customers_stagemoveday IN EXCLUSIVE MODE")
        cursor.execute("DELETE FROM customers_stagemoveday")
        cursor.execute(_REBUILD, [[f"{stage}>{next_stage}" for stage, next_stage in sorted(ONWARD)]])
    return StageMoveDay.objects.count()
