"""The customer 360's quick actions that act through other apps: emails, enrollments and suppressions (automations),
the customer's email in Stripe (billing), a Discord link (support). Each is a `QuickAction` of the registry and audited
runner in customers/staff_actions.py (one transaction, a `StaffAction` row and a timeline entry with the change),
registered at start by backoffice/apps.py; each does its work through the owning app's services.
"""

from typing import Any

from django import forms
from django.utils import timezone

from automations import customer_actions as email_actions
from automations import customer_selectors as email_selectors
from automations.address_fix import blocked_emails_release
from automations.models import EmailQueueItem
from automations.services.enrollments import enrollment_exit
from automations.services.queue_items import queue_items_cancel
from automations.services.rules import EnrollmentRefused, enrollment_start_by_hand
from billing.stripe_customers import StripeCustomerError, stripe_customer_email_set
from customers import services
from customers.models import Customer, StaffActionKind
from customers.staff_actions import ActionRefused, Call, Outcome, QuickAction, staff_action_register
from support.identity import discord_link_by_staff


def _item(customer: Customer, item_id: int) -> EmailQueueItem:
    item = email_selectors.customer_email_get(customer=customer, item_id=item_id)
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
    cancelled = queue_items_cancel(item_ids=[item.pk], reason=f"Cancelled by staff: {call.reason}"[:2000])
    if not cancelled:
        raise ActionRefused("That email is no longer pending: it was sent or stopped already.")
    return Outcome(f"cancelled {item.step.template.name}", {"queue_item_id": item.pk})


def _enroll(call: Call, *, rule_id: int) -> Outcome:
    rule = email_selectors.rule_get(rule_id=rule_id)
    if rule is None:
        raise ActionRefused("No such rule.")
    try:
        enrollment = enrollment_start_by_hand(
            rule=rule, customer=call.customer, reason=f"{call.actor.get_username()}: {call.reason}"
        )
    except EnrollmentRefused as exc:
        raise ActionRefused(str(exc)) from None
    return Outcome(f"enrolled in {rule.name}", {"rule_id": rule.pk, "enrollment_id": enrollment.pk})


def _unenroll(call: Call, *, enrollment_id: int) -> Outcome:
    enrollment = email_selectors.customer_enrollment_running_for_update(
        customer=call.customer, enrollment_id=enrollment_id
    )
    if enrollment is None:
        raise ActionRefused("That enrollment is not running for this customer.")
    cancelled = enrollment_exit(enrollment=enrollment, reason=f"Removed by staff: {call.reason}")
    return Outcome(
        f"removed from {enrollment.rule.name} ({cancelled} pending email(s) cancelled)",
        {"rule_id": enrollment.rule_id, "enrollment_id": enrollment.pk, "cancelled_emails": cancelled},
    )


def _suppression_lift(call: Call, *, suppression_id: int) -> Outcome:
    suppression = email_selectors.suppression_get(suppression_id=suppression_id)
    email = call.customer.email
    if suppression is None or not email or suppression.email != services.normalize_email(email):
        raise ActionRefused("That suppression is not on this customer's address.")
    email_actions.suppression_lift(suppression_id=suppression.pk)
    return Outcome(
        f"lifted the suppression of {suppression.email} ({suppression.get_reason_display()})",
        {"email": suppression.email, "suppression_reason": suppression.reason},
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


def _discord_link(call: Call, *, discord_user_id: str) -> Outcome:
    """Staff link a Discord account by hand, having checked who the person is (a typed email in the ticket form is
    no proof: support/identity.py). The user's tickets without a customer become this customer's."""
    if call.customer.discord_user_id == discord_user_id:
        raise ActionRefused("That Discord account is linked to this customer already.")
    done = discord_link_by_staff(customer=call.customer, discord_user_id=discord_user_id)
    replaced = f", replacing {done['previous']}" if done["previous"] else ""
    return Outcome(f"linked Discord user {discord_user_id} by hand{replaced}", done)


def _id_field() -> forms.IntegerField:
    return forms.IntegerField(min_value=1)


def staff_actions_register() -> None:
    """Add these actions to the customers' registry (backoffice/apps.py, at start). Adding one is one entry here (and
    its form on the 360 page, templates/admin/backoffice/customer/360.html)."""
    staff_action_register(
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
        # Linking a Discord account is editing the customer's contact details (Support may).
        QuickAction(
            StaffActionKind.DISCORD_LINK,
            "customers.change_customer",
            {"discord_user_id": forms.RegexField(regex=r"^\d{15,21}$", max_length=21, strip=True)},
            _discord_link,
        ),
    )
