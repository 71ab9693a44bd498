"""Quick actions staff take on one customer from the customer 360 page, each leaving an audit row.

Every action runs in one transaction: the owning app's service makes the change, and the same transaction writes a
`StaffAction` (who, when, what, why) and a timeline entry (source "staff"), so the change and its record exist
together or not at all. Each action names the Django permission it needs (`PERMISSIONS`); the admin checks it before
calling, and roles grant it in config/roles.py.
"""

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from automations import customer_actions as email_actions
from automations import services as automation_services
from automations.models import AutomationRule, EmailQueueItem, Enrollment, EnrollmentStatus, Suppression

from . import services
from .lifecycle import Stage, can_transition
from .models import ConsentRecord, Customer, StaffAction, StaffActionKind, TimelineSource

# The permission each action needs. A superuser has them all; config/roles.py gives them to the roles.
PERMISSIONS: dict[str, str] = {
    StaffActionKind.EMAIL_RESEND: "automations.change_emailqueueitem",
    StaffActionKind.EMAIL_CANCEL: "automations.change_emailqueueitem",
    StaffActionKind.ENROLL: "automations.add_enrollment",
    StaffActionKind.UNENROLL: "automations.change_enrollment",
    StaffActionKind.SUPPRESSION_LIFT: "automations.delete_suppression",
    # A consent change is kept as a consent record; moving the stage by hand is recording a stage transition.
    StaffActionKind.CONSENT_CHANGE: "customers.add_consentrecord",
    StaffActionKind.STAGE_MOVE: "customers.add_stagetransition",
}


class ActionRefused(Exception):
    """The action does not apply (not this customer's, already done, not allowed by the lifecycle): say why."""


def may(user, action: str) -> bool:
    return user.has_perm(PERMISSIONS[action])


def allowed_actions(user) -> set[str]:
    return {action for action in PERMISSIONS if may(user, action)}


@dataclass(frozen=True)
class Done:
    message: str
    audit: StaffAction


def _audit(*, actor, customer: Customer, action: str, reason: str, summary: str, details: dict[str, Any]) -> Done:
    audit = StaffAction.objects.create(
        customer=customer,
        actor=actor,
        actor_name=actor.get_username(),
        action=action,
        reason=reason[:500],
        details=details,
    )
    services.timeline_event_record(
        customer=customer,
        source=TimelineSource.STAFF,
        source_key=f"staff-action:{audit.pk}",
        kind=f"staff.{action}",
        occurred_at=audit.created_at,
        summary=f"{audit.actor_name}: {summary}" + (f" ({reason})" if reason else ""),
        payload={"staff_action_id": audit.pk, **details},
        object_type="customers.staff_action",
        object_id=str(audit.pk),
    )
    return Done(message=summary, audit=audit)


def _item(customer: Customer, item_id: int) -> EmailQueueItem:
    item = EmailQueueItem.objects.select_related("step__template").filter(pk=item_id, customer=customer).first()
    if item is None:
        raise ActionRefused("That email is not this customer's.")
    return item


@transaction.atomic
def email_resend(*, actor, customer: Customer, item_id: int, reason: str, request_key: str = "") -> Done:
    """`request_key` comes with the page the staff member clicked on: the same request posted again finds the copy it
    queued and is refused, so a double click sends one copy and leaves one audit row. Without one, the audit row's id
    is the key (every call is a request of its own)."""
    item = _item(customer, item_id)
    done = _audit(
        actor=actor,
        customer=customer,
        action=StaffActionKind.EMAIL_RESEND,
        reason=reason,
        summary=f"resent {item.step.template.name}",
        details={"queue_item_id": item.pk},
    )
    try:
        copy = email_actions.queue_item_resend(
            item_id=item.pk, key=f"staff-{request_key}" if request_key else f"staff-action-{done.audit.pk}"
        )
    except email_actions.ResendRefused as exc:  # raised inside the atomic block: the audit row goes too
        raise ActionRefused(str(exc)) from None
    done.audit.details = {"queue_item_id": item.pk, "queued_item_id": copy.pk}
    done.audit.save(update_fields=["details"])
    return done


@transaction.atomic
def email_cancel(*, actor, customer: Customer, item_id: int, reason: str) -> Done:
    item = _item(customer, item_id)
    if not automation_services.queue_items_cancel(item_ids=[item.pk], reason=f"Cancelled by staff: {reason}"[:2000]):
        raise ActionRefused("That email is no longer pending: it was sent or stopped already.")
    return _audit(
        actor=actor,
        customer=customer,
        action=StaffActionKind.EMAIL_CANCEL,
        reason=reason,
        summary=f"cancelled {item.step.template.name}",
        details={"queue_item_id": item.pk},
    )


@transaction.atomic
def enroll(*, actor, customer: Customer, rule_id: int, reason: str) -> Done:
    rule = AutomationRule.objects.filter(pk=rule_id).first()
    if rule is None:
        raise ActionRefused("No such rule.")
    try:
        enrollment = automation_services.enrollment_start_by_hand(
            rule=rule, customer=customer, reason=f"{actor.get_username()}: {reason}"
        )
    except automation_services.EnrollmentRefused as exc:
        raise ActionRefused(str(exc)) from None
    return _audit(
        actor=actor,
        customer=customer,
        action=StaffActionKind.ENROLL,
        reason=reason,
        summary=f"enrolled in {rule.name}",
        details={"rule_id": rule.pk, "enrollment_id": enrollment.pk},
    )


@transaction.atomic
def unenroll(*, actor, customer: Customer, enrollment_id: int, reason: str) -> Done:
    enrollment = (
        Enrollment.objects.select_for_update(of=("self",))
        .select_related("rule")
        .filter(pk=enrollment_id, customer=customer)
        .first()
    )
    if enrollment is None or enrollment.status != EnrollmentStatus.ACTIVE:
        raise ActionRefused("That enrollment is not running for this customer.")
    cancelled = automation_services.enrollment_exit(enrollment=enrollment, reason=f"Removed by staff: {reason}")
    return _audit(
        actor=actor,
        customer=customer,
        action=StaffActionKind.UNENROLL,
        reason=reason,
        summary=f"removed from {enrollment.rule.name} ({cancelled} pending email(s) cancelled)",
        details={"rule_id": enrollment.rule_id, "enrollment_id": enrollment.pk, "cancelled_emails": cancelled},
    )


@transaction.atomic
def suppression_lift(*, actor, customer: Customer, suppression_id: int, reason: str) -> Done:
    suppression = Suppression.objects.filter(pk=suppression_id).first()
    if suppression is None or not customer.email or suppression.email != services.normalize_email(customer.email):
        raise ActionRefused("That suppression is not on this customer's address.")
    email_actions.suppression_lift(suppression_id=suppression.pk)
    return _audit(
        actor=actor,
        customer=customer,
        action=StaffActionKind.SUPPRESSION_LIFT,
        reason=reason,
        summary=f"lifted the suppression of {suppression.email} ({suppression.get_reason_display()})",
        details={"email": suppression.email, "suppression_reason": suppression.reason},
    )


@transaction.atomic
def consent_change(*, actor, customer: Customer, opt_in: bool, reason: str) -> Done:
    if not reason.strip():
        raise ActionRefused("A consent change needs a reason.")
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.opt_in_confirmed == opt_in:
        raise ActionRefused(f"Marketing consent is already {'on' if opt_in else 'off'}.")
    services.customer_update(customer=customer, opt_in_confirmed=opt_in)
    record = ConsentRecord.objects.create(
        customer=customer,
        opt_in=opt_in,
        source="staff",
        reason=reason[:500],
        actor=actor,
        actor_name=actor.get_username(),
    )
    return _audit(
        actor=actor,
        customer=customer,
        action=StaffActionKind.CONSENT_CHANGE,
        reason=reason,
        summary=f"turned marketing consent {'on' if opt_in else 'off'}",
        details={"opt_in": opt_in, "consent_record_id": record.pk},
    )


def stage_choices(customer: Customer) -> list[tuple[str, str]]:
    """Where the lifecycle lets this customer be moved by hand from their current stage."""
    return [(stage.value, stage.label) for stage in Stage if can_transition(customer.lifecycle_stage, stage.value)]


@transaction.atomic
def stage_move(*, actor, customer: Customer, to_stage: str, reason: str) -> Done:
    from_stage = customer.lifecycle_stage
    if to_stage not in dict(stage_choices(customer)):
        raise ActionRefused(f"The lifecycle does not allow a move from {from_stage} to {to_stage}.")
    try:
        transition = services.customer_move_stage(
            customer=customer, to_stage=to_stage, cause=f"Moved by {actor.get_username()}: {reason}"
        )
    except services.InvalidStageTransition as exc:  # moved meanwhile by an event
        raise ActionRefused(str(exc)) from None
    if transition is None:
        raise ActionRefused("The customer is in that stage already.")
    return _audit(
        actor=actor,
        customer=customer,
        action=StaffActionKind.STAGE_MOVE,
        reason=reason,
        summary=f"moved the stage from {Stage(from_stage).label} to {Stage(to_stage).label}",
        details={"from": from_stage, "to": to_stage, "stage_transition_id": transition.pk},
    )


@transaction.atomic
def contact_edit(*, actor, customer: Customer, changes: dict[str, tuple[Any, Any]]) -> Done | None:
    """The audit row of an edit of the customer's form (the change itself is the form's save through services)."""
    if not changes:
        return None
    return _audit(
        actor=actor,
        customer=customer,
        action=StaffActionKind.CONTACT_EDIT,
        reason="",
        summary=f"edited {', '.join(sorted(changes))}",
        details={name: {"from": str(old), "to": str(new)} for name, (old, new) in changes.items()},
    )
