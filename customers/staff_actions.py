"""Quick actions staff take on one customer from the customer 360 page, each leaving an audit row.

Every action is one entry in `ACTIONS`: its name (a `StaffActionKind`), the Django permission it needs, the form of its
inputs (a reason, always, and what the action acts on), and the function that does it through the owning app's
services and says what it did (the audit text and details). `action_run` runs an entry in one transaction and writes,
in the same transaction, a `StaffAction` (who, when, what, why) and a timeline entry (source "staff"), so the change
and its record exist together or not at all. The admin checks the permission before calling (admin_360.action_view);
roles grant it in config/roles.py.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django import forms
from django.db import transaction
from django.utils import timezone

from automations import customer_actions as email_actions
from automations import services as automation_services
from automations.address_fix import blocked_emails_release
from automations.models import AutomationRule, EmailQueueItem, Enrollment, EnrollmentStatus, Suppression
from billing.stripe_customers import StripeCustomerError, stripe_customer_email_set

from . import services
from .lifecycle import Stage, can_transition
from .models import ConsentRecord, Customer, StaffAction, StaffActionKind, TimelineSource


class ActionRefused(Exception):
    """The action does not apply (not this customer's, already done, not allowed by the lifecycle): say why."""


@dataclass(frozen=True)
class Done:
    message: str
    audit: StaffAction


@dataclass(frozen=True)
class Outcome:
    """What an action did: the audit text (in the message, the timeline and the audit row) and the audit's details."""

    summary: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Call:
    """Who takes the action on whom and why; `audit` is the action's audit row, written first in the transaction (an
    action may derive a key from its id), its details and time filled in once the action is done."""

    actor: Any
    customer: Customer
    reason: str
    audit: StaffAction


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, strip=True)


@dataclass(frozen=True)
class QuickAction:
    name: StaffActionKind
    permission: str  # a superuser has them all; config/roles.py gives them to the roles
    # Its inputs besides the reason: the form's other fields are passed to `perform` by name.
    fields: dict[str, forms.Field]
    perform: Callable[..., Outcome]  # perform(call, **fields) -> Outcome, raising ActionRefused

    @cached_property
    def form(self) -> type[forms.Form]:
        return type(f"{self.name.title().replace('_', '')}Form", (ReasonForm,), dict(self.fields))


@transaction.atomic
def _run(*, action: str, actor, customer: Customer, reason: str, perform: Callable[[Call], Outcome]) -> Done:
    audit = StaffAction.objects.create(
        customer=customer, actor=actor, actor_name=actor.get_username(), action=action, reason=reason[:500], details={}
    )
    outcome = perform(Call(actor=actor, customer=customer, reason=reason, audit=audit))
    # The audit's time is when the action was done, after its effects, as the timeline shows it.
    audit.created_at = timezone.now()
    audit.details = outcome.details
    audit.save(update_fields=["created_at", "details"])
    services.timeline_event_record(
        customer=customer,
        source=TimelineSource.STAFF,
        source_key=f"staff-action:{audit.pk}",
        kind=f"staff.{action}",
        occurred_at=audit.created_at,
        summary=f"{audit.actor_name}: {outcome.summary}" + (f" ({reason})" if reason else ""),
        payload={"staff_action_id": audit.pk, **outcome.details},
        object_type="customers.staff_action",
        object_id=str(audit.pk),
    )
    return Done(message=outcome.summary, audit=audit)


def action_run(*, name: str, actor, customer: Customer, data: dict[str, Any]) -> Done:
    """Take the quick action `name` with its form's cleaned data; ActionRefused rolls everything back."""
    action = ACTIONS[name]
    inputs = {field: data[field] for field in action.fields}
    return _run(
        action=name,
        actor=actor,
        customer=customer,
        reason=data["reason"],
        perform=lambda call: action.perform(call, **inputs),
    )


def may(user, action: str) -> bool:
    return user.has_perm(ACTIONS[action].permission)


def allowed_actions(user) -> set[str]:
    return {action for action in ACTIONS if may(user, action)}


def _item(customer: Customer, item_id: int) -> EmailQueueItem:
    item = EmailQueueItem.objects.select_related("step__template").filter(pk=item_id, customer=customer).first()
    if item is None:
        raise ActionRefused("That email is not this customer's.")
    return item


def _email_resend(call: Call, *, item_id: int, request_key, send_now: bool = False) -> Outcome:
    """`request_key` comes with the page the staff member clicked on: the same request posted again finds the copy it
    queued and is refused, so a double click sends one copy and leaves one audit row. Without one, the audit row's id
    is the key (every call is a request of its own). A cancelled email goes back to its own time unless `send_now`
    (an explicit, separate button that says it sends ahead of time)."""
    item = _item(call.customer, item_id)
    ahead = send_now and email_actions.resend_ahead_of_time(item)
    try:
        copy = email_actions.queue_item_resend(
            item_id=item.pk,
            key=f"staff-{request_key}" if request_key else f"staff-action-{call.audit.pk}",
            send_now=send_now,
        )
    except email_actions.ResendRefused as exc:  # raised inside the atomic block: the audit row goes too
        raise ActionRefused(str(exc)) from None
    name = item.step.template.name
    details = {"queue_item_id": item.pk, "queued_item_id": copy.pk}
    if ahead:
        own_time = f"{item.scheduled_at:%Y-%m-%d %H:%M} UTC"
        return Outcome(f"sent {name} now, ahead of its own time ({own_time})", {**details, "sent_ahead": True})
    if copy.scheduled_at > timezone.now():
        return Outcome(
            f"put {name} back in the queue for its own time, {copy.scheduled_at:%Y-%m-%d %H:%M} UTC", details
        )
    return Outcome(f"resent {name}", details)


def _email_cancel(call: Call, *, item_id: int) -> Outcome:
    item = _item(call.customer, item_id)
    cancelled = automation_services.queue_items_cancel(
        item_ids=[item.pk], reason=f"Cancelled by staff: {call.reason}"[:2000]
    )
    if not cancelled:
        raise ActionRefused("That email is no longer pending: it was sent or stopped already.")
    return Outcome(f"cancelled {item.step.template.name}", {"queue_item_id": item.pk})


def _enroll(call: Call, *, rule_id: int) -> Outcome:
    rule = AutomationRule.objects.filter(pk=rule_id).first()
    if rule is None:
        raise ActionRefused("No such rule.")
    try:
        enrollment = automation_services.enrollment_start_by_hand(
            rule=rule, customer=call.customer, reason=f"{call.actor.get_username()}: {call.reason}"
        )
    except automation_services.EnrollmentRefused as exc:
        raise ActionRefused(str(exc)) from None
    return Outcome(f"enrolled in {rule.name}", {"rule_id": rule.pk, "enrollment_id": enrollment.pk})


def _unenroll(call: Call, *, enrollment_id: int) -> Outcome:
    enrollment = (
        Enrollment.objects.select_for_update(of=("self",))
        .select_related("rule")
        .filter(pk=enrollment_id, customer=call.customer)
        .first()
    )
    if enrollment is None or enrollment.status != EnrollmentStatus.ACTIVE:
        raise ActionRefused("That enrollment is not running for this customer.")
    cancelled = automation_services.enrollment_exit(enrollment=enrollment, reason=f"Removed by staff: {call.reason}")
    return Outcome(
        f"removed from {enrollment.rule.name} ({cancelled} pending email(s) cancelled)",
        {"rule_id": enrollment.rule_id, "enrollment_id": enrollment.pk, "cancelled_emails": cancelled},
    )


def _suppression_lift(call: Call, *, suppression_id: int) -> Outcome:
    suppression = Suppression.objects.filter(pk=suppression_id).first()
    email = call.customer.email
    if suppression is None or not email or suppression.email != services.normalize_email(email):
        raise ActionRefused("That suppression is not on this customer's address.")
    email_actions.suppression_lift(suppression_id=suppression.pk)
    return Outcome(
        f"lifted the suppression of {suppression.email} ({suppression.get_reason_display()})",
        {"email": suppression.email, "suppression_reason": suppression.reason},
    )


def _consent_change(call: Call, *, opt_in: bool) -> Outcome:
    if not call.reason.strip():
        raise ActionRefused("A consent change needs a reason.")
    customer = Customer.objects.select_for_update().get(pk=call.customer.pk)
    if customer.opt_in_confirmed == opt_in:
        raise ActionRefused(f"Marketing consent is already {'on' if opt_in else 'off'}.")
    services.customer_update(customer=customer, opt_in_confirmed=opt_in)
    record = ConsentRecord.objects.create(
        customer=customer,
        opt_in=opt_in,
        source="staff",
        reason=call.reason[:500],
        actor=call.actor,
        actor_name=call.actor.get_username(),
    )
    return Outcome(
        f"turned marketing consent {'on' if opt_in else 'off'}", {"opt_in": opt_in, "consent_record_id": record.pk}
    )


def _email_change(call: Call, *, email: str) -> Outcome:
    """Correct the address (a bounced one, a typo): Stripe first, then the CRM, in that order because Stripe is the
    source of a Stripe customer's email. Written only here, the next customer.* event or the daily sync would put the
    old address back; written to Stripe first, the customer.updated event Stripe sends agrees with what we write
    next, whichever lands first. If Stripe refuses or does not answer, nothing changes here (the audit row goes too).
    Then the emails blocked for the old address that are still current go out to the new one."""
    customer = Customer.objects.select_for_update().get(pk=call.customer.pk)
    old, new = customer.email, services.normalize_email(email)
    if new == old:
        raise ActionRefused("That is already the customer's address.")
    if Customer.objects.filter(email__iexact=new).exclude(pk=customer.pk).exists():
        raise ActionRefused(f"Another customer already has {new}: open that customer instead.")
    details: dict[str, Any] = {"from": old, "to": new}
    if customer.stripe_customer_id:
        try:
            stripe_customer_email_set(
                stripe_customer_id=customer.stripe_customer_id,
                email=new,
                # Our ids: a retry of this call (stripe-python retries lost answers) changes Stripe once.
                idempotency_key=f"staff-action:{call.audit.pk}:stripe-customer-email",
            )
        except StripeCustomerError as exc:
            raise ActionRefused(str(exc)) from None
        details["stripe_customer_id"] = customer.stripe_customer_id
    try:
        services.customer_email_correct(customer=customer, email=new)
    except services.EmailTaken:
        raise ActionRefused(f"Another customer already has {new}: open that customer instead.") from None
    call.customer.email = new
    released = blocked_emails_release(customer_id=customer.pk)
    details.update(released_emails=released.released, still_blocked_emails=released.left_blocked)
    where = " in Stripe and here" if customer.stripe_customer_id else ""
    resent = f"; {released.released} blocked email(s) will go to the new address" if released.released else ""
    return Outcome(f"corrected the email from {old or '(none)'} to {new}{where}{resent}", details)


def stage_choices(customer: Customer) -> list[tuple[str, str]]:
    """Where the lifecycle lets this customer be moved by hand from their current stage."""
    return [(stage.value, stage.label) for stage in Stage if can_transition(customer.lifecycle_stage, stage.value)]


def _stage_move(call: Call, *, to_stage: str) -> Outcome:
    customer = call.customer
    from_stage = customer.lifecycle_stage
    if to_stage not in dict(stage_choices(customer)):
        raise ActionRefused(f"The lifecycle does not allow a move from {from_stage} to {to_stage}.")
    try:
        transition = services.customer_move_stage(
            customer=customer, to_stage=to_stage, cause=f"Moved by {call.actor.get_username()}: {call.reason}"
        )
    except services.InvalidStageTransition as exc:  # moved meanwhile by an event
        raise ActionRefused(str(exc)) from None
    if transition is None:
        raise ActionRefused("The customer is in that stage already.")
    return Outcome(
        f"moved the stage from {Stage(from_stage).label} to {Stage(to_stage).label}",
        {"from": from_stage, "to": to_stage, "stage_transition_id": transition.pk},
    )


def _discord_link(call: Call, *, discord_user_id: str) -> Outcome:
    """Staff link a Discord account by hand, having checked who the person is (a typed email in the ticket form is
    no proof: support/identity.py). The user's tickets without a customer become this customer's."""
    from support.identity import discord_link_by_staff

    if call.customer.discord_user_id == discord_user_id:
        raise ActionRefused("That Discord account is linked to this customer already.")
    done = discord_link_by_staff(customer=call.customer, discord_user_id=discord_user_id)
    replaced = f", replacing {done['previous']}" if done["previous"] else ""
    return Outcome(f"linked Discord user {discord_user_id} by hand{replaced}", done)


def _id_field() -> forms.IntegerField:
    return forms.IntegerField(min_value=1)


# The quick actions: adding one is one entry here (and its form on the 360 page, templates/.../360.html).
ACTIONS: dict[str, QuickAction] = {
    action.name: action
    for action in (
        QuickAction(
            StaffActionKind.EMAIL_RESEND,
            "automations.change_emailqueueitem",
            # Rendered with the page; a resend without one (an older page, a script) is a request of its own.
            {
                "item_id": _id_field(),
                "request_key": forms.UUIDField(required=False),
                # Only from the explicit "Send now" button; without it a cancelled email keeps its own time.
                "send_now": forms.BooleanField(required=False),
            },
            _email_resend,
        ),
        QuickAction(
            StaffActionKind.EMAIL_CANCEL, "automations.change_emailqueueitem", {"item_id": _id_field()}, _email_cancel
        ),
        QuickAction(StaffActionKind.ENROLL, "automations.add_enrollment", {"rule_id": _id_field()}, _enroll),
        QuickAction(
            StaffActionKind.UNENROLL, "automations.change_enrollment", {"enrollment_id": _id_field()}, _unenroll
        ),
        QuickAction(
            StaffActionKind.SUPPRESSION_LIFT,
            "automations.delete_suppression",
            {"suppression_id": _id_field()},
            _suppression_lift,
        ),
        # Support corrects addresses (a customer's contact details are theirs to edit: config/roles.py).
        QuickAction(
            StaffActionKind.EMAIL_CHANGE,
            "customers.change_customer",
            {"email": forms.EmailField(max_length=254)},
            _email_change,
        ),
        # A consent change is kept as a consent record; moving the stage by hand is recording a stage transition.
        QuickAction(
            StaffActionKind.CONSENT_CHANGE,
            "customers.add_consentrecord",
            {"opt_in": forms.TypedChoiceField(choices=[("1", "on"), ("0", "off")], coerce=lambda value: value == "1")},
            _consent_change,
        ),
        # Linking a Discord account is editing the customer's contact details (Support may).
        QuickAction(
            StaffActionKind.DISCORD_LINK,
            "customers.change_customer",
            {"discord_user_id": forms.RegexField(regex=r"^\d{15,21}$", max_length=21, strip=True)},
            _discord_link,
        ),
        QuickAction(
            StaffActionKind.STAGE_MOVE,
            "customers.add_stagetransition",
            {"to_stage": forms.ChoiceField(choices=Stage.choices)},
            _stage_move,
        ),
    )
}
PERMISSIONS: dict[str, str] = {name: action.permission for name, action in ACTIONS.items()}


def contact_edit(*, actor, customer: Customer, changes: dict[str, tuple[Any, Any]]) -> Done | None:
    """The audit row of an edit of the customer's form (the change itself is the form's save through services)."""
    if not changes:
        return None
    outcome = Outcome(
        f"edited {', '.join(sorted(changes))}",
        {name: {"from": str(old), "to": str(new)} for name, (old, new) in changes.items()},
    )
    return _run(
        action=StaffActionKind.CONTACT_EDIT, actor=actor, customer=customer, reason="", perform=lambda _: outcome
    )
