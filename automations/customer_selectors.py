"""What automations knows about one customer, for the customer 360 page and its quick actions
(backoffice/customer_360.py, backoffice/staff_actions.py): their newest emails and enrollments, the suppressions of
their address, counts over all their emails, and the rows an action acts on. Each is one bounded query with its joins,
whatever the customer's history.
"""

from django.db.models import Count, Prefetch, Q

from customers.models import Customer

from .email_state import AddressVerdict
from .models import (
    AutomationRule,
    EmailQueueItem,
    Enrollment,
    EnrollmentStatus,
    QueueStatus,
    Suppression,
    TemplateCategory,
)


def customer_emails_recent(*, customer: Customer, limit: int) -> list[EmailQueueItem]:
    """The customer's newest emails, with their template and rule."""
    return list(
        EmailQueueItem.objects.filter(customer=customer)
        .select_related("step__template", "enrollment__rule")
        .order_by("-scheduled_at", "-id")[:limit]
    )


def _pending(*conditions: Q) -> Count:
    return Count("id", filter=Q(*conditions, status=QueueStatus.PENDING))


def customer_email_counts(*, customer: Customer, verdict: AddressVerdict) -> dict[str, int]:
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


def customer_enrollments_recent(*, customer: Customer, limit: int) -> list[Enrollment]:
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
        .order_by("-enrolled_at", "-id")[:limit]
    )


def suppressions_for_address(*, email: str) -> list[Suppression]:
    """The suppressions of this address (none for an empty one)."""
    return list(Suppression.objects.filter(email=email.strip().lower())) if email else []


def rules_enabled() -> list[AutomationRule]:
    """The rules a customer may be enrolled in by hand, by name."""
    return list(AutomationRule.objects.filter(enabled=True).order_by("name"))


def rule_get(*, rule_id: int) -> AutomationRule | None:
    return AutomationRule.objects.filter(pk=rule_id).first()


def customer_email_get(*, customer: Customer, item_id: int) -> EmailQueueItem | None:
    """One of the customer's emails with its template; None when it is not theirs."""
    return EmailQueueItem.objects.select_related("step__template").filter(pk=item_id, customer=customer).first()


def customer_email_as_sent(*, customer: Customer, item_id: int) -> EmailQueueItem | None:
    """One of the customer's emails with its batch (the message as handed to the provider), template and rule; None
    when it is not theirs."""
    return (
        EmailQueueItem.objects.select_related("batch", "step__template", "enrollment__rule")
        .filter(pk=item_id, customer=customer)
        .first()
    )


def customer_enrollment_running_for_update(*, customer: Customer, enrollment_id: int) -> Enrollment | None:
    """The customer's running enrollment, locked until the end of the transaction (call it inside the one that
    changes it); None when it is not theirs or not running."""
    enrollment = (
        Enrollment.objects.select_for_update(of=("self",))
        .select_related("rule")
        .filter(pk=enrollment_id, customer=customer)
        .first()
    )
    return enrollment if enrollment is not None and enrollment.status == EnrollmentStatus.ACTIVE else None


def suppression_get(*, suppression_id: int) -> Suppression | None:
    return Suppression.objects.filter(pk=suppression_id).first()
