"""Quick actions staff take on one customer, each leaving an audit row: the registry and the audited runner.

Every action is one `QuickAction` registered here: its name (a `StaffActionKind`), the Django permission it needs, the
form of its inputs (a reason, always, and what the action acts on), and the function that does it through the owning
app's services and says what it did (the audit text and details). `action_run` runs an entry in one transaction and
writes, in the same transaction, a `StaffAction` (who, when, what, why) and a timeline entry (source "staff"), so the
change and its record exist together or not at all. The admin checks the permission before calling
(backoffice/admin_360.py action_view); roles grant it in config/roles.py.

The actions that change only the customer (consent, stage) are registered here; the ones that act through other apps
(emails, enrollments, suppressions, the Stripe email, Discord links) by backoffice/staff_actions.py at start, as
domain-event subscribers register themselves: customers imports no other app.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django import forms
from django.db import transaction
from django.utils import timezone

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


# The quick actions by name: adding one is one `staff_action_register` call (and its form on the 360 page,
# templates/admin/backoffice/customer/360.html).
ACTIONS: dict[str, QuickAction] = {}


def staff_action_register(*actions: QuickAction) -> None:
    """Add quick actions to the registry (at start: an app's AppConfig.ready). Registering one again replaces it."""
    for action in actions:
        ACTIONS[action.name] = action


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


staff_action_register(
    # A consent change is kept as a consent record; moving the stage by hand is recording a stage transition.
    QuickAction(
        StaffActionKind.CONSENT_CHANGE,
        "customers.add_consentrecord",
        {"opt_in": forms.TypedChoiceField(choices=[("1", "on"), ("0", "off")], coerce=lambda value: value == "1")},
        _consent_change,
    ),
    QuickAction(
        StaffActionKind.STAGE_MOVE,
        "customers.add_stagetransition",
        {"to_stage": forms.ChoiceField(choices=Stage.choices)},
        _stage_move,
    ),
)


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
