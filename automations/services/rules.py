"""Staff actions on rules, steps and enrollments (admin and API): enable a rule, retire a step with history, enroll
a customer by hand."""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.models import Customer

from ..models import (
    AutomationRule,
    AutomationStep,
    EmailQueueItem,
    Enrollment,
    QueueStatus,
    ReentryPolicy,
)
from .enrollments import enrollment_queue_steps

logger = logging.getLogger(__name__)


def step_has_history(*, step: AutomationStep) -> bool:
    """Whether any email was ever queued for the step: such a step is retired, never deleted (PROTECT)."""
    return step.pk is not None and EmailQueueItem.objects.filter(step=step).exists()


@transaction.atomic
def step_retire(*, step_id: int) -> int:
    """Retire a step: no new enrollment queues it and its pending emails are cancelled. Returns how many."""
    AutomationStep.objects.filter(pk=step_id).update(retired=True)
    return EmailQueueItem.objects.filter(step_id=step_id, status=QueueStatus.PENDING).update(
        status=QueueStatus.CANCELLED, last_error="Step retired", updated_at=timezone.now()
    )


class EnrollmentRefused(Exception):
    """A hand enrollment that the rule's state or its re-entry policy does not allow."""


@transaction.atomic
def rule_set_enabled(*, rule_id: int, enabled: bool) -> AutomationRule:
    """Turn a rule on or off. Off stops new enrollments; running ones carry on (exit them to stop their emails)."""
    rule = AutomationRule.objects.select_for_update().get(pk=rule_id)
    if rule.enabled != enabled:
        rule.enabled = enabled
        rule.save(update_fields=["enabled", "updated_at"])
    return rule


@transaction.atomic
def enrollment_start_by_hand(*, rule: AutomationRule, customer: Customer, reason: str) -> Enrollment:
    """Enroll a customer in a rule at a staff member's (or a tool's) request, without a triggering event.

    The rule's conditions are not applied (the person asking decided), but its re-entry policy is: once per customer
    means once, and a sequence never runs twice at once for the customer. Raises EnrollmentRefused otherwise.
    """
    if not rule.enabled:
        raise EnrollmentRefused(f"Rule {rule.name!r} is disabled.")
    if not customer.email:
        raise EnrollmentRefused("The customer has no email address.")
    now = timezone.now()
    scope_key = "customer" if rule.reentry == ReentryPolicy.ONCE_PER_CUSTOMER else f"manual:{now.isoformat()}"
    try:
        with transaction.atomic():
            enrollment = Enrollment.objects.create(
                rule=rule,
                customer=customer,
                scope_key=scope_key,
                context={"enrolled_by": reason[:200]},
                enrolled_at=now,
            )
    except IntegrityError:
        raise EnrollmentRefused(f"{customer} is already enrolled in {rule.name!r}.") from None
    enrollment_queue_steps(enrollment=enrollment, context={}, now=now)
    return enrollment
