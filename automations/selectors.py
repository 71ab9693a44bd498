"""Reads for the admin: the analytics of rules and steps over a date range."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, F, Min, Q
from django.db.models.functions import TruncDate

from .models import (
    SOFT_BOUNCE_LIMIT,
    SOFT_BOUNCE_WINDOW,
    SUPPRESSES_TRANSACTIONAL,
    AutomationRule,
    AutomationStep,
    EmailQueueItem,
    Enrollment,
    QueueStatus,
    SendingPause,
    Suppression,
)


@dataclass
class Stats:
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    human_opened: int = 0
    clicked: int = 0
    bounced: int = 0  # permanent bounces (the address is suppressed)
    soft_bounced: int = 0  # transient or undetermined bounces (nothing suppressed)
    failed: int = 0  # Resend's email.failed
    provider_suppressed: int = 0  # Resend's email.suppressed
    complained: int = 0
    unsubscribed: int = 0

    def add(self, other: "Stats") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def rate(self, name: str) -> float | None:
        """Deliveries and delivery problems against sent; engagement against delivered (sent when nothing is
        delivered yet)."""
        against_sent = ("delivered", "bounced", "soft_bounced", "failed", "provider_suppressed")
        base = self.sent if name in against_sent else (self.delivered or self.sent)
        return getattr(self, name) / base if base else None


@dataclass
class StepRow:
    step: AutomationStep
    stats: Stats

    @property
    def label(self) -> str:
        # Retired steps keep their row: their emails were sent, and their numbers stay part of the rule's.
        return f"{self.step.order}. {self.step.template.name}" + (" (retired)" if self.step.retired else "")


@dataclass
class RuleRow:
    rule_name: str
    stats: Stats = field(default_factory=Stats)
    steps: list[StepRow] = field(default_factory=list)


@dataclass
class Analytics:
    since: date
    until: date
    rules: list[RuleRow]
    total: Stats
    days: list[tuple[date, int, int, int]]  # (day, sends, unique opens, unique clicks)
    # The rules behind the figures, for the page to state them.
    machine_open_seconds: int = field(default_factory=lambda: settings.AUTOMATIONS_MACHINE_OPEN_SECONDS)
    soft_bounce_limit: int = SOFT_BOUNCE_LIMIT
    soft_bounce_days: int = SOFT_BOUNCE_WINDOW.days


COUNTS = {
    "sent": Count("id"),
    "delivered": Count("id", filter=Q(delivered_at__isnull=False)),
    "opened": Count("id", filter=Q(opened_at__isnull=False)),
    "human_opened": Count("id", filter=Q(human_opened_at__isnull=False)),
    "clicked": Count("id", filter=Q(clicked_at__isnull=False)),
    "bounced": Count("id", filter=Q(bounced_at__isnull=False)),
    "soft_bounced": Count("id", filter=Q(soft_bounced_at__isnull=False)),
    "failed": Count("id", filter=Q(failed_at__isnull=False)),
    "provider_suppressed": Count("id", filter=Q(provider_suppressed_at__isnull=False)),
    "complained": Count("id", filter=Q(complained_at__isnull=False)),
    "unsubscribed": Count("id", filter=Q(unsubscribed_at__isnull=False)),
}


def email_analytics(*, since: datetime, until: datetime, rule_id: int | None = None) -> Analytics:
    """Emails sent in [since, until) and what became of them, per rule and step, plus a daily series.

    One row per email: the tracking service keeps each email's first delivery/open/click/... time on the queue item,
    so "unique opens" is a count of items with `opened_at`, and the query never touches the (much larger) event table.
    """
    cohort = EmailQueueItem.objects.filter(sent_at__gte=since, sent_at__lt=until, status=QueueStatus.SENT)
    if rule_id:
        cohort = cohort.filter(step__rule_id=rule_id)
    per_step = {row.pop("step_id"): Stats(**row) for row in cohort.values("step_id").annotate(**COUNTS).order_by()}
    steps = (
        AutomationStep.objects.filter(pk__in=per_step)
        .select_related("rule", "template")
        .order_by("rule__name", "order")
    )
    rules: dict[int, RuleRow] = {}
    total = Stats()
    for step in steps:
        row = rules.setdefault(step.rule_id, RuleRow(rule_name=step.rule.name))
        row.steps.append(StepRow(step=step, stats=per_step[step.pk]))
        row.stats.add(per_step[step.pk])
        total.add(per_step[step.pk])

    daily = (
        cohort.annotate(day=TruncDate("sent_at"))
        .values("day")
        .annotate(
            sends=Count("id"),
            opens=Count("id", filter=Q(opened_at__isnull=False)),
            clicks=Count("id", filter=Q(clicked_at__isnull=False)),
        )
    )
    by_day = {row["day"]: (row["sends"], row["opens"], row["clicks"]) for row in daily.order_by()}
    days = []
    day = since.date()
    while day < until.date() or (day == until.date() and until.time() != datetime.min.time()):
        sends, opens, clicks = by_day.get(day, (0, 0, 0))
        days.append((day, sends, opens, clicks))
        day += timedelta(days=1)
    return Analytics(since=since.date(), until=until.date(), rules=list(rules.values()), total=total, days=days)


def suppression_state_for_email(*, email: str, opt_in_confirmed: bool) -> dict:
    """Whether the queue would send marketing or transactional email to this address (the API's customer detail)."""
    reasons = (
        sorted(Suppression.objects.filter(email=email.strip().lower()).values_list("reason", flat=True))
        if email
        else []
    )
    return {
        "reasons": reasons,
        "marketing_allowed": bool(email) and opt_in_confirmed and not reasons,
        "transactional_allowed": bool(email) and not any(reason in SUPPRESSES_TRANSACTIONAL for reason in reasons),
    }


def queue_oldest_due_at(*, now: datetime) -> datetime | None:
    """When the longest-waiting due pending email became due (queue_item_due_idx): the queue's age for /healthz."""
    return (
        EmailQueueItem.objects.filter(status=QueueStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )


def rule_list():
    return AutomationRule.objects.prefetch_related("steps__template").order_by("name")


def enrollment_list_for_customer(*, customer_id: int):
    return Enrollment.objects.filter(customer_id=customer_id).select_related("rule").order_by("-id")


def queue_item_list():
    return EmailQueueItem.objects.select_related("enrollment__rule", "step__template")


# --- the dashboard (config/dashboard.py) ----------------------------------------------------------------------------

DUNNING_TRIGGER = "payment.failed"  # a dunning rule is a rule started by a failed payment


def queue_health(*, now: datetime, since: datetime) -> dict:
    """The queue now: emails due and waiting (queue_item_due_idx), emails that failed or whose outcome stayed unknown
    since `since`, and the sending pauses with their cause."""
    pending = EmailQueueItem.objects.filter(status=QueueStatus.PENDING).aggregate(
        due=Count("id", filter=Q(next_attempt_at__lte=now)),
        later=Count("id", filter=Q(next_attempt_at__gt=now)),
        oldest_due=Min("next_attempt_at", filter=Q(next_attempt_at__lte=now)),
    )
    problems = EmailQueueItem.objects.filter(
        status__in=[QueueStatus.FAILED, QueueStatus.UNCONFIRMED], updated_at__gte=since
    ).aggregate(
        failed=Count("id", filter=Q(status=QueueStatus.FAILED)),
        unconfirmed=Count("id", filter=Q(status=QueueStatus.UNCONFIRMED)),
    )
    return {**pending, **problems, "pauses": list(SendingPause.objects.order_by("paused_at"))}


def dunning_sends(*, customer_ids: set[int], since: datetime) -> list[dict]:
    """Emails of dunning rules sent to these customers since `since`: customer id, subscription id, sent_at."""
    return list(
        EmailQueueItem.objects.filter(
            customer_id__in=customer_ids,
            status=QueueStatus.SENT,
            sent_at__gte=since,
            enrollment__rule__trigger=DUNNING_TRIGGER,
        ).values("customer_id", "sent_at", subscription_id=F("enrollment__subscription_id"))
    )
