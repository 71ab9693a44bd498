"""Reads for the admin and the API, with their joins already applied."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, Exists, OuterRef, QuerySet
from django.db.models.functions import TruncDate

from .lifecycle import FUNNEL_ORDER, Stage
from .models import Customer, StaffAction, StageMoveDay, StageTransition, TimelineEvent
from .rollups import FUNNEL_STEPS


def customer_list() -> QuerySet[Customer]:
    return Customer.objects.all()


def customers_entered_stage(
    *,
    customers: QuerySet[Customer],
    stage: str,
    since: datetime | None = None,
    until: datetime | None = None,
    not_from_stage: str = "",
) -> QuerySet[Customer]:
    """The customers among `customers` who moved into `stage` in [since, until) (a bound left out is open), each listed
    once however often they entered. With `not_from_stage`, a move from that stage does not count: the dashboard's
    churned figure leaves out win_back -> churned (a win-back that ended without a return is not a new churn). One
    EXISTS in the list's own query (stage_transition_funnel_idx), so the list costs the same queries at any size."""
    moves = stage_entered_moves(
        customer=OuterRef("pk"), stage=stage, since=since, until=until, not_from_stage=not_from_stage
    )
    return customers.filter(Exists(moves))


def stage_entered_moves(
    *,
    stage: str,
    since: datetime | None = None,
    until: datetime | None = None,
    not_from_stage: str = "",
    customer=None,
) -> QuerySet[StageTransition]:
    """The moves behind `customers_entered_stage`: of `customer` (a customer or an OuterRef) or, left out, of every
    customer (their `customer_id`s are a condition another query over customers can combine: marketing's segments)."""
    moves = StageTransition.objects.filter(to_stage=stage)
    if customer is not None:
        moves = moves.filter(customer=customer)
    if since is not None:
        moves = moves.filter(occurred_at__gte=since)
    if until is not None:
        moves = moves.filter(occurred_at__lt=until)
    if not_from_stage:
        moves = moves.exclude(from_stage=not_from_stage)
    return moves


def customers_created_between(
    *, customers: QuerySet[Customer], since: datetime | None = None, until: datetime | None = None
) -> QuerySet[Customer]:
    """The customers among `customers` the CRM first recorded in [since, until): the dashboard's "new customers"."""
    if since is not None:
        customers = customers.filter(created_at__gte=since)
    if until is not None:
        customers = customers.filter(created_at__lt=until)
    return customers


def customer_get_by_email(*, email: str) -> Customer | None:
    return Customer.objects.filter(email__iexact=email.strip()).first()


def customer_stage_path(*, customer: Customer) -> list[StageTransition]:
    """The customer's lifecycle moves, oldest first (the path the customer 360 draws)."""
    return list(StageTransition.objects.filter(customer=customer).order_by("occurred_at", "id"))


def customer_staff_actions_recent(*, customer: Customer, limit: int) -> list[StaffAction]:
    """The newest audited staff actions on the customer, with who took them."""
    return list(
        StaffAction.objects.filter(customer=customer).select_related("actor").order_by("-created_at", "-id")[:limit]
    )


def stage_counts() -> list[tuple[str, int]]:
    """How many customers are in each stage now, in funnel order. count(*), not count(id): the stage's index alone
    answers it (an index-only scan), without reading every customer's row."""
    counts = dict(
        Customer.objects.values_list("lifecycle_stage").annotate(n=Count("*")).values_list("lifecycle_stage", "n")
    )
    return [(stage, counts.get(stage, 0)) for stage in FUNNEL_ORDER]


def customer_timeline_queryset(*, customer: Customer) -> QuerySet[TimelineEvent]:
    """The customer's timeline, newest first, for paging (timeline_customer_recent_idx)."""
    return TimelineEvent.objects.filter(customer=customer).order_by("-occurred_at", "-id")


def customer_stage_history_queryset(*, customer: Customer) -> QuerySet[StageTransition]:
    return StageTransition.objects.filter(customer=customer).order_by("-occurred_at", "-id")


# --- the dashboard (backoffice/dashboard.py) ----------------------------------------------------------------------


@dataclass
class StageMoves:
    """The moves of whole UTC days [first_day, last_day], from the daily roll-up (customers/rollups.py)."""

    entered: dict[str, int]  # moves into each stage
    moved_on: dict[str, int]  # of those, how many the customer has since left onward (FUNNEL_STEPS)
    churned: dict[date, int]  # per day, moves into churned from any stage but win_back (a win-back ending is no churn)

    def conversions(self) -> list[dict]:
        return [
            {
                "stage": stage,
                "next_stages": next_stages,
                "entered": self.entered.get(stage, 0),
                "moved_on": self.moved_on.get(stage, 0),
            }
            for stage, next_stages in FUNNEL_STEPS
        ]


def stage_moves(*, first_day: date, last_day: date) -> StageMoves:
    """One query over the roll-up: a few rows per day, whatever the number of customers."""
    entered: dict[str, int] = defaultdict(int)
    moved_on: dict[str, int] = defaultdict(int)
    churned: dict[date, int] = defaultdict(int)
    rows = StageMoveDay.objects.filter(day__gte=first_day, day__lte=last_day).values_list(
        "day", "from_stage", "to_stage", "moves", "moved_on"
    )
    for day, from_stage, to_stage, moves, onward in rows:
        entered[to_stage] += moves
        moved_on[to_stage] += onward
        if to_stage == Stage.CHURNED and from_stage != Stage.WIN_BACK:
            churned[day] += moves
    return StageMoves(entered=dict(entered), moved_on=dict(moved_on), churned=dict(churned))


def customers_created_by_day(*, since: datetime, until: datetime) -> dict[date, int]:
    """Customers the CRM first recorded in [since, until), per UTC day (from customer_created_idx alone: count(*))."""
    return dict(
        Customer.objects.filter(created_at__gte=since, created_at__lt=until)
        .annotate(day=TruncDate("created_at"))
        .values_list("day")
        .annotate(n=Count("*"))
        .order_by()
        .values_list("day", "n")
    )
