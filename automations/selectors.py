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
    EnrollmentStatus,
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
    failed: int = 0  # the provider failed to send it
    provider_suppressed: int = 0  # the provider suppressed the address
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
    # One scan of the cohort, grouped by step and day; the per-step and per-day figures are sums of its cells.
    per_step: dict[int, Stats] = {}
    by_day: dict[date, tuple[int, int, int]] = {}
    cells = cohort.annotate(day=TruncDate("sent_at")).values("step_id", "day").annotate(**COUNTS).order_by()
    for cell in cells:
        step_id, day = cell.pop("step_id"), cell.pop("day")
        stats = Stats(**cell)
        per_step.setdefault(step_id, Stats()).add(stats)
        sends, opens, clicks = by_day.get(day, (0, 0, 0))
        by_day[day] = (sends + stats.sent, opens + stats.opened, clicks + stats.clicked)
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

    days = []
    day = since.date()
    while day < until.date() or (day == until.date() and until.time() != datetime.min.time()):
        sends, opens, clicks = by_day.get(day, (0, 0, 0))
        days.append((day, sends, opens, clicks))
        day += timedelta(days=1)
    return Analytics(since=since.date(), until=until.date(), rules=list(rules.values()), total=total, days=days)


def _stats_per_step(cohort) -> dict[int, Stats]:
    """Sent emails of `cohort` and what became of them, per step id: one grouped query."""
    return {row.pop("step_id"): Stats(**row) for row in cohort.values("step_id").annotate(**COUNTS).order_by()}


@dataclass
class RuleNumbers:
    """A rule's page: its enrollments by status, and every step's emails since the rule began (the analytics page's
    figures, counted the same way, over all time)."""

    enrolled: int
    active: int
    completed: int
    exited: int
    steps: list[StepRow]
    total: Stats


def rule_numbers(*, rule_id: int) -> RuleNumbers:
    """Three queries, whatever the number of enrollments and emails."""
    counts = Enrollment.objects.filter(rule_id=rule_id).aggregate(
        enrolled=Count("id"),
        active=Count("id", filter=Q(status=EnrollmentStatus.ACTIVE)),
        completed=Count("id", filter=Q(status=EnrollmentStatus.COMPLETED)),
        exited=Count("id", filter=Q(status=EnrollmentStatus.EXITED)),
    )
    cohort = EmailQueueItem.objects.filter(step__rule_id=rule_id, sent_at__isnull=False, status=QueueStatus.SENT)
    per_step = _stats_per_step(cohort)
    total = Stats()
    rows = []
    for step in AutomationStep.objects.filter(rule_id=rule_id).select_related("template").order_by("order"):
        stats = per_step.get(step.pk, Stats())
        rows.append(StepRow(step=step, stats=stats))
        total.add(stats)
    return RuleNumbers(**counts, steps=rows, total=total)


def rule_enrolled_now(*, rule_id: int, limit: int):
    """The newest active enrollments of a rule with their customers (one query; the page links to the full list)."""
    return list(
        Enrollment.objects.filter(rule_id=rule_id, status=EnrollmentStatus.ACTIVE)
        .select_related("customer")
        .order_by("-enrolled_at", "-id")[:limit]
    )


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
    """The rules staff manage here: a broadcast's hidden rule (sends_broadcast) is managed from its broadcast."""
    return AutomationRule.objects.filter(sends_broadcast=False).prefetch_related("steps__template").order_by("name")


def enrollment_list_for_customer(*, customer_id: int):
    return Enrollment.objects.filter(customer_id=customer_id).select_related("rule").order_by("-id")


def queue_item_list():
    return EmailQueueItem.objects.select_related("enrollment__rule", "step__template")


# --- the dashboard (backoffice/dashboard.py) ----------------------------------------------------------------------

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
        )
        .order_by()  # compared in memory: no sort
        .values("customer_id", "sent_at", subscription_id=F("enrollment__subscription_id"))
    )
