"""Reads for the admin and the API, with their joins already applied."""

from datetime import datetime

from django.db.models import Count, QuerySet

from .lifecycle import FUNNEL_ORDER
from .models import Customer, StageTransition, TimelineEvent


def customer_list() -> QuerySet[Customer]:
    return Customer.objects.all()


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
