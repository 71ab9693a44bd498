"""Everything the customer 360 page shows about one customer, read in a fixed number of queries.

Each list is bounded (the newest N) and loaded with its joins, so the page costs the same number of queries for a
customer with two emails as for one with two thousand (tests/backoffice/test_customer_360.py asserts it). The
timeline is paged and filtered by source.
"""

from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator

from automations import customer_selectors as emails
from automations.email_state import AddressVerdict, ShownState, address_verdict, shown_state
from automations.models import AutomationRule, EmailQueueItem, Enrollment, QueueStatus, Suppression
from billing import customer_selectors as money
from billing.models import CURRENT_STATUSES
from billing.selectors import subscription_list_for_customer
from customers.models import Customer, StaffAction, StageTransition, TimelineSource
from customers.selectors import customer_staff_actions_recent, customer_stage_path, customer_timeline_queryset
from support.models import Ticket
from support.selectors import tickets_active_count_for_customer, tickets_recent_for_customer

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
    goodwill_credits: list = field(default_factory=list)

    @property
    def marketing_allowed(self) -> bool:
        return self.verdict is not None and self.verdict.marketing_reason is None


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
    events = customer_timeline_queryset(customer=customer)
    if source:
        events = events.filter(source=source)
    return Paginator(events, TIMELINE_PAGE_SIZE).get_page(page)


def customer_360(*, customer: Customer, timeline_source: str = "", timeline_page_number: str | int = 1) -> Customer360:
    subscriptions = list(subscription_list_for_customer(customer=customer)[:SUBSCRIPTIONS_SHOWN])
    current = next(
        (s for s in subscriptions if s.status in CURRENT_STATUSES), subscriptions[0] if subscriptions else None
    )
    recent_emails = emails.customer_emails_recent(customer=customer, limit=EMAILS_SHOWN)
    source = timeline_source if timeline_source in TimelineSource.values else ""
    stripe_id = customer.stripe_customer_id
    suppressions = emails.suppressions_for_address(email=customer.email)
    reasons = {suppression.reason for suppression in suppressions}
    verdict = address_verdict(
        email=customer.email, opt_in_confirmed=customer.opt_in_confirmed, suppression_reasons=reasons
    )
    enrollments = emails.customer_enrollments_recent(customer=customer, limit=ENROLLMENTS_SHOWN)
    return Customer360(
        customer=customer,
        path=customer_stage_path(customer=customer),
        subscriptions=subscriptions,
        current_subscription=current,
        failed_payment=money.failed_payment(stripe_customer_id=stripe_id),
        revenue=money.lifetime_revenue(stripe_customer_id=stripe_id),
        stripe_url=money.stripe_dashboard_url(stripe_customer_id=stripe_id),
        suppressions=suppressions,
        email_counts=emails.customer_email_counts(customer=customer, verdict=verdict),
        emails=recent_emails,
        enrollments=enrollments,
        tickets=tickets_recent_for_customer(customer=customer, limit=TICKETS_SHOWN),
        open_tickets=tickets_active_count_for_customer(customer=customer),
        staff_actions=customer_staff_actions_recent(customer=customer, limit=ACTIONS_SHOWN),
        timeline=timeline_page(customer=customer, source=source, page=timeline_page_number),
        timeline_source=source,
        verdict=verdict,
        email_states=_states(customer, reasons, recent_emails, enrollments),
        goodwill_credits=money.goodwill_credits(customer_id=customer.pk),
    )


def rules_to_enroll_in() -> list[AutomationRule]:
    return emails.rules_enabled()
