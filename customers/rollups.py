"""The dashboard's daily roll-up of stage moves (StageMoveDay), so the funnel reads a few hundred rows, not every move.

customer_move_stage calls `stage_move_day_record` in the move's transaction; `stage_move_days_rebuild` recomputes
the whole table from StageTransition (the data migration, `manage.py rebuild_stage_rollup`, the bench) and gives the
same rows (tests/customers/test_rollups.py).

"Moved on": a move into stage S counts as moved on once the customer's next move leaves S for one of S's next stages
in FUNNEL_STEPS. It is credited to the day of the move into S, so "of those who entered Trial that day, how many went
on to buy" stays on that day's row.

A new customer enters their first stage (Discovery) without a move: customer_upsert records the creation as a row
with an empty `from_stage` on the day the CRM first recorded them (`stage_move_day_record_created`), so the funnel's
top shows the customers who arrived and how many of them went on to a trial or a purchase.
"""

from collections import defaultdict
from datetime import UTC, date, datetime

from django.db import connection, transaction
from django.db.models import F

from .models import Customer, StageMoveDay, StageTransition

ARRIVED = ""  # the from_stage of a customer's creation row

# The funnel's main path, each stage with the stages that count as "moved on" from it: a customer can buy without a
# trial, and a purchase leads to onboarding or straight to active (customers/lifecycle.py).
FUNNEL_STEPS: list[tuple[str, tuple[str, ...]]] = [
    ("discovery", ("trial", "purchase")),
    ("trial", ("purchase",)),
    ("purchase", ("onboarding", "active")),
    ("onboarding", ("active",)),
]
ONWARD = {(stage, next_stage) for stage, next_stages in FUNNEL_STEPS for next_stage in next_stages}


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def lock_for_rebuild(model) -> None:
    """Make writers of a roll-up wait until its rebuild commits (PostgreSQL; reads go on): a move made meanwhile is
    not in the rebuild's snapshot, and adds itself to the rebuilt rows once the lock is released."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {connection.ops.quote_name(model._meta.db_table)} IN EXCLUSIVE MODE")


def _add(*, day: date, from_stage: str, to_stage: str, moves: int, moved_on: int) -> None:
    # get_or_create, then an increment in the database: two transactions moving customers on the same day add up (the
    # second insert waits on the unique constraint, fails, and get_or_create reads the committed row).
    row, _ = StageMoveDay.objects.get_or_create(day=day, from_stage=from_stage, to_stage=to_stage)
    StageMoveDay.objects.filter(pk=row.pk).update(moves=F("moves") + moves, moved_on=F("moved_on") + moved_on)


def stage_move_day_record_created(*, customer: Customer) -> None:
    """Count a customer just created (inside customer_upsert's transaction) as arriving in their first stage."""
    _add(day=utc_day(customer.created_at), from_stage=ARRIVED, to_stage=customer.lifecycle_stage, moves=1, moved_on=0)


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
    elif entry is None:  # their first move: they leave the stage they arrived in
        created_at = Customer.objects.values_list("created_at", flat=True).get(pk=transition.customer_id)
        _add(day=utc_day(created_at), from_stage=ARRIVED, to_stage=transition.from_stage, moves=0, moved_on=1)


@transaction.atomic
def stage_move_days_rebuild() -> int:
    """Recompute the roll-up from every customer's creation and every StageTransition, each customer's moves in
    order. Returns the number of day rows."""
    lock_for_rebuild(StageMoveDay)
    counts: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0])
    # (created day, stage now) per customer; a customer who has moved arrived in their first move's from_stage.
    arrivals = {
        customer_id: (utc_day(created_at), stage)
        for customer_id, created_at, stage in Customer.objects.values_list(
            "id", "created_at", "lifecycle_stage"
        ).iterator(chunk_size=5000)
    }
    previous_customer, entry = None, None
    history = StageTransition.objects.order_by("customer_id", "occurred_at", "id").values_list(
        "customer_id", "from_stage", "to_stage", "occurred_at"
    )
    for customer_id, from_stage, to_stage, occurred_at in history.iterator(chunk_size=5000):
        key = (utc_day(occurred_at), from_stage, to_stage)
        counts[key][0] += 1
        if customer_id != previous_customer and customer_id in arrivals:
            # As stage_move_day_record_created, then stage_move_day_record's first move.
            arrival = (arrivals.pop(customer_id)[0], ARRIVED, from_stage)
            counts[arrival][0] += 1
            counts[arrival][1] += (from_stage, to_stage) in ONWARD
        # As stage_move_day_record: the customer's previous move entered the stage this one leaves onward.
        elif customer_id == previous_customer and entry[2] == from_stage and (from_stage, to_stage) in ONWARD:
            counts[entry][1] += 1
        previous_customer, entry = customer_id, key
    for day, stage in arrivals.values():  # customers who have not moved yet
        counts[(day, ARRIVED, stage)][0] += 1
    StageMoveDay.objects.all().delete()
    StageMoveDay.objects.bulk_create(
        [
            StageMoveDay(day=day, from_stage=from_stage, to_stage=to_stage, moves=moves, moved_on=moved_on)
            for (day, from_stage, to_stage), (moves, moved_on) in counts.items()
        ],
        batch_size=1000,
    )
    return len(counts)
