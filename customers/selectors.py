"""Reads for the admin and the API, with their joins already applied."""

from datetime import datetime, timedelta

from django.db.models import Count, Exists, OuterRef, QuerySet
from django.db.models.functions import TruncDate

from .lifecycle import FUNNEL_ORDER
from .models import Customer, StageTransition, TimelineEvent


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
    moves = StageTransition.objects.filter(customer=OuterRef("pk"), to_stage=stage)
    if since is not None:
        moves = moves.filter(occurred_at__gte=since)
    if until is not None:
        moves = moves.filter(occurred_at__lt=until)
    if not_from_stage:
        moves = moves.exclude(from_stage=not_from_stage)
    return customers.filter(Exists(moves))


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


def customer_get_by_stripe_id(*, stripe_customer_id: str) -> Customer | None:
    if not stripe_customer_id:
        return None
    return Customer.objects.filter(stripe_customer_id=stripe_customer_id).first()


def customer_timeline(*, customer: Customer, limit: int = 200) -> list[TimelineEvent]:
    return list(TimelineEvent.objects.filter(customer=customer).order_by("-occurred_at", "-id")[:limit])


def customer_stage_history(*, customer: Customer) -> list[StageTransition]:
    return list(StageTransition.objects.filter(customer=customer).order_by("-occurred_at", "-id"))


def stage_counts() -> list[tuple[str, int]]:
    """How many customers are in each stage now, in funnel order."""
    counts = dict(
        Customer.objects.values_list("lifecycle_stage").annotate(n=Count("id")).values_list("lifecycle_stage", "n")
    )
    return [(stage, counts.get(stage, 0)) for stage in FUNNEL_ORDER]


def stage_entries(*, since: datetime, until: datetime) -> list[tuple[str, int]]:
    """How many distinct customers entered each stage in a period: the funnel."""
    rows = (
        StageTransition.objects.filter(occurred_at__gte=since, occurred_at__lt=until)
        .values("to_stage")
        .annotate(customers=Count("customer", distinct=True))
    )
    counts = {row["to_stage"]: row["customers"] for row in rows}
    return [(stage, counts.get(stage, 0)) for stage in FUNNEL_ORDER]


def customer_timeline_queryset(*, customer: Customer) -> QuerySet[TimelineEvent]:
    """The customer's timeline, newest first, for paging (timeline_customer_recent_idx)."""
    return TimelineEvent.objects.filter(customer=customer).order_by("-occurred_at", "-id")


def customer_stage_history_queryset(*, customer: Customer) -> QuerySet[StageTransition]:
    return StageTransition.objects.filter(customer=customer).order_by("-occurred_at", "-id")


# --- the dashboard (config/dashboard.py) ----------------------------------------------------------------------------

# The funnel's main path, each stage with the stages that count as "moved on" from it: a customer can buy without a
# trial, and a purchase leads to onboarding or straight to active (customers/lifecycle.py).
FUNNEL_STEPS: list[tuple[str, tuple[str, ...]]] = [
    ("discovery", ("trial", "purchase")),
    ("trial", ("purchase",)),
    ("purchase", ("onboarding", "active")),
    ("onboarding", ("active",)),
]


def customers_created_count(*, since: datetime, until: datetime) -> int:
    """Customers the CRM first recorded in [since, until) (customer_created_idx)."""
    return Customer.objects.filter(created_at__gte=since, created_at__lt=until).count()


def stage_conversions(*, since: datetime, until: datetime, entered: dict[str, int]) -> list[dict]:
    """For each step of the main path: the customers who entered its stage in [since, until) (`entered`, from
    stage_entries), and how many of them have since moved on to a next stage (at any time after entering, up to now).
    One query per step; the EXISTS is a filter, so PostgreSQL runs it as one semi-join, not one lookup per row."""
    rows = []
    for stage, next_stages in FUNNEL_STEPS:
        moved_on = StageTransition.objects.filter(
            customer=OuterRef("customer"), to_stage__in=next_stages, occurred_at__gte=OuterRef("occurred_at")
        )
        moved = (
            StageTransition.objects.filter(to_stage=stage, occurred_at__gte=since, occurred_at__lt=until)
            .filter(Exists(moved_on))
            .aggregate(n=Count("customer", distinct=True))["n"]
        )
        rows.append({"stage": stage, "next_stages": next_stages, "entered": entered.get(stage, 0), "moved_on": moved})
    return rows


def daily_new_and_churned(*, since: datetime, until: datetime) -> list[tuple]:
    """Per day in [since, until): customers created, and customers who moved to churned. Two queries."""
    created = dict(
        Customer.objects.filter(created_at__gte=since, created_at__lt=until)
        .annotate(day=TruncDate("created_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("day", "n")
    )
    churned = dict(
        StageTransition.objects.filter(to_stage="churned", occurred_at__gte=since, occurred_at__lt=until)
        .annotate(day=TruncDate("occurred_at"))
        .values_list("day")
        .annotate(n=Count("customer", distinct=True))
        .order_by()
        .values_list("day", "n")
    )
    days = []
    day = since.date()
    while day <= until.date():
        days.append((day, created.get(day, 0), churned.get(day, 0)))
        day += timedelta(days=1)
    return days
