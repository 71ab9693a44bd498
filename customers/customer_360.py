"""Everything the customer 360 page shows about one customer, read in a fixed number of queries.

Each list is bounded (the newest N) and loaded with its joins, so the page costs the same number of queries for a
customer with two emails as for one with two thousand (tests/customers/test_customer_360.py asserts it). The
timeline is paged and filtered by source.
"""

from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, Prefetch, Q

from automations.email_state import AddressVerdict, ShownState, address_verdict, shown_state
from automations.models import (
    AutomationRule,
    EmailQueueItem,
    Enrollment,
    EnrollmentStatus,
    QueueStatus,
    Suppression,
    TemplateCategory,
)
from billing import customer_selectors as money
from billing.models import CURRENT_STATUSES
from billing.selectors import subscription_list_for_customer
from support.models import ACTIVE_STATUSES, Ticket

from .models import Customer, StaffAction, StageTransition, TimelineEvent, TimelineSource

# The emails a "Resend" applies to (automations.customer_actions): a failed one, or one that went out or may have.
RESENDABLE = (QueueStatus.FAILED, QueueStatus.SENT, QueueStatus.CANCELLED, QueueStatus.UNCONFIRMED)
EMAILS_SHOWN = 50
ENROLLMENTS_SHOWN = 30
TICKETS_SHOWN = 20
SUBSCRIPTIONS_SHOWN = 20
ACTIONS_SHOWN = 20
TIMELINE_PAGE_SIZE = 25


@dataclass
class Customer360:
    customer: Customer
    path: list[StageTransition]
    subscriptions: list
    current_subscription: Any
    failed_payment: money.FailedPayment | None
    revenue: list[money.Money]
    stripe_url: str
    suppressions: list[Suppression]
    email_counts: dict[str, int]
    emails: list[EmailQueueItem]
    enrollments: list[Enrollment]
    tickets: list[Ticket]
    open_tickets: int
    staff_actions: list[StaffAction]
    timeline: Page
    timeline_source: str
    timeline_sources: list[tuple[str, str]] = field(default_factory=lambda: list(TimelineSource.choices))
    # What goes out to this customer and what is blocked, and why (automations/email_state.py).
    verdict: AddressVerdict | None = None
    # Each listed email's status as it will turn out (a pending email the queue will refuse is shown blocked).
    email_states: dict[int, ShownState] = field(default_factory=dict)

    @property
    def marketing_allowed(self) -> bool:
        return self.verdict is not None and self.verdict.marketing_reason is None


def _pending(*conditions: Q) -> Count:
    return Count("id", filter=Q(*conditions, status=QueueStatus.PENDING))


def _email_counts(customer: Customer, verdict: AddressVerdict) -> dict[str, int]:
    """Sent, pending, blocked, paused, opened, clicked, bounced and failed over all of the customer's emails (one
    aggregate). A pending email the queue will refuse counts as blocked, one of a paused rule as paused."""
    marketing = Q(step__template__category=TemplateCategory.MARKETING)
    paused_rule = Q(enrollment__rule__paused_at__isnull=False)
    counts = EmailQueueItem.objects.filter(customer=customer).aggregate(
        total=Count("id"),
        sent=Count("id", filter=Q(sent_at__isnull=False)),
        sending=Count("id", filter=Q(status=QueueStatus.SENDING)),
        pending_marketing=_pending(marketing),
        pending_other=_pending(~marketing),
        pending_marketing_paused=_pending(marketing, paused_rule),
        pending_other_paused=_pending(~marketing, paused_rule),
        refused=Count("id", filter=Q(status=QueueStatus.SUPPRESSED)),
        held=Count("id", filter=Q(status=QueueStatus.PAUSED)),
        opened=Count("id", filter=Q(opened_at__isnull=False)),
        clicked=Count("id", filter=Q(clicked_at__isnull=False)),
        bounced=Count("id", filter=Q(bounced_at__isnull=False) | Q(soft_bounced_at__isnull=False)),
        failed=Count("id", filter=Q(status=QueueStatus.FAILED)),
    )
    blocked, paused, waiting = counts["refused"], counts["held"], counts["sending"]
    for kind, reason in (("marketing", verdict.marketing_reason), ("other", verdict.transactional_reason)):
        if reason:
            blocked += counts[f"pending_{kind}"]
        else:
            paused += counts[f"pending_{kind}_paused"]
            waiting += counts[f"pending_{kind}"] - counts[f"pending_{kind}_paused"]
    return {**counts, "pending": waiting, "blocked": blocked, "paused": paused}


def _enrollments(customer: Customer) -> list[Enrollment]:
    """The newest enrollments, each with `next_emails`: its unsent emails, soonest first (the next step)."""
    waiting = (
        EmailQueueItem.objects.filter(status__in=[QueueStatus.PENDING, QueueStatus.SENDING, QueueStatus.PAUSED])
        .select_related("step__template")
        .order_by("scheduled_at", "id")
    )
    return list(
        Enrollment.objects.filter(customer=customer)
        .select_related("rule")
        .prefetch_related(Prefetch("queue_items", queryset=waiting, to_attr="next_emails"))
        .order_by("-enrolled_at", "-id")[:ENROLLMENTS_SHOWN]
    )


def _states(customer: Customer, reasons: set[str], emails: list[EmailQueueItem], enrollments: list[Enrollment]):
    """The shown state of each listed email, and of each enrollment's next email (`next_state`). No query: the
    emails are all this customer's, and their rules are loaded."""
    states = {}
    for item in emails:
        item.customer = customer
        states[item.pk] = shown_state(item, reasons, rule_paused=item.enrollment.rule.paused_at is not None)
    for enrollment in enrollments:
        enrollment.next_state = None
        if enrollment.next_emails:
            upcoming = enrollment.next_emails[0]
            upcoming.customer, upcoming.enrollment = customer, enrollment
            enrollment.next_state = shown_state(upcoming, reasons, rule_paused=enrollment.rule.paused_at is not None)
    return states


def timeline_page(*, customer: Customer, source: str = "", page: str | int = 1) -> Page:
    events = TimelineEvent.objects.filter(customer=customer).order_by("-occurred_at", "-id")
    if source:
        events = events.filter(source=source)
    return Paginator(events, TIMELINE_PAGE_SIZE).get_page(page)


def customer_360(*, customer: Customer, timeline_source: str = "", timeline_page_number: str | int = 1) -> Customer360:
    subscriptions = list(subscription_list_for_customer(customer=customer)[:SUBSCRIPTIONS_SHOWN])
    current = next(
        (s for s in subscriptions if s.status in CURRENT_STATUSES), subscriptions[0] if subscriptions else None
    )
    emails = list(
        EmailQueueItem.objects.filter(customer=customer)
        .select_related("step__template", "enrollment__rule")
        .order_by("-scheduled_at", "-id")[:EMAILS_SHOWN]
    )
    tickets = list(
        Ticket.objects.filter(customer=customer)
        .defer("interaction_token", "transcript_html", "description")
        .order_by("-opened_at", "-id")[:TICKETS_SHOWN]
    )
    source = timeline_source if timeline_source in TimelineSource.values else ""
    stripe_id = customer.stripe_customer_id
    suppressions = list(Suppression.objects.filter(email=customer.email.strip().lower())) if customer.email else []
    reasons = {suppression.reason for suppression in suppressions}
    verdict = address_verdict(
        email=customer.email, opt_in_confirmed=customer.opt_in_confirmed, suppression_reasons=reasons
    )
    enrollments = _enrollments(customer)
    return Customer360(
        customer=customer,
        path=list(StageTransition.objects.filter(customer=customer).order_by("occurred_at", "id")),
        subscriptions=subscriptions,
        current_subscription=current,
        failed_payment=money.failed_payment(stripe_customer_id=stripe_id),
        revenue=money.lifetime_revenue(stripe_customer_id=stripe_id),
        stripe_url=money.stripe_dashboard_url(stripe_customer_id=stripe_id),
        suppressions=suppressions,
        email_counts=_email_counts(customer, verdict),
        emails=emails,
        enrollments=enrollments,
        tickets=tickets,
        open_tickets=Ticket.objects.filter(customer=customer, status__in=ACTIVE_STATUSES).count(),
        staff_actions=list(
            StaffAction.objects.filter(customer=customer)
            .select_related("actor")
            .order_by("-created_at", "-id")[:ACTIONS_SHOWN]
        ),
        timeline=timeline_page(customer=customer, source=source, page=timeline_page_number),
        timeline_source=source,
        verdict=verdict,
        email_states=_states(customer, reasons, emails, enrollments),
    )


def rules_to_enroll_in() -> list[AutomationRule]:
    return list(AutomationRule.objects.filter(enabled=True).order_by("name"))


def running_enrollments(view: Customer360) -> list[Enrollment]:
    return [e for e in view.enrollments if e.status == EnrollmentStatus.ACTIVE]
