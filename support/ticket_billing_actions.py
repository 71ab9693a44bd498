"""Billing actions from the ticket page (issue 22): send the customer's card-update link, pause the subscription for
1 to 3 months, give a goodwill credit. Each goes through billing's own services (billing/support_actions.py,
billing/retention/changes.py), which talk to Stripe under idempotency keys from our ids; here it is audited on the
ticket (`TicketAuditEntry`) and posted in the ticket as an internal note saying what was done.

Each form carries a hidden token, one per rendering of the page: the same token posted twice acts once (billing's
request key / idempotency key, and the note's form token), so a double click changes nothing more.
"""

import uuid

from django import forms
from django.core.exceptions import PermissionDenied
from django.db import transaction

from billing import selectors as billing_selectors
from billing import support_actions
from billing.models import GoodwillCreditStatus
from billing.retention.changes import SubscriptionChangeRefused, subscription_pause
from billing.retention.models import ChangeStatus
from customers.models import StaffActionKind
from customers.staff_actions import ActionRefused as BillingActionRefused
from customers.staff_actions import may

from . import workspace
from .models import Ticket
from .workspace_models import PostKind, TicketPost

ACTIONS = {"card_update_link", "pause", "goodwill_credit"}
TOKEN = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput)


class CardUpdateLinkForm(forms.Form):
    token = TOKEN


class PauseForm(forms.Form):
    months = forms.TypedChoiceField(choices=[(1, "1 month"), (2, "2 months"), (3, "3 months")], coerce=int)
    token = TOKEN


class GoodwillCreditForm(forms.Form):
    amount = forms.DecimalField(min_value=0.01, max_value=100000, decimal_places=2, label="Amount")
    reason = forms.CharField(max_length=200)
    token = TOKEN


# Billing's own permission for its quick actions, on top of the ticket's change permission the page checks.
QUICK_ACTIONS = {
    "card_update_link": StaffActionKind.CARD_UPDATE_LINK_SEND,
    "goodwill_credit": StaffActionKind.GOODWILL_CREDIT,
}

FORMS = {"card_update_link": CardUpdateLinkForm, "pause": PauseForm, "goodwill_credit": GoodwillCreditForm}


def billing_actions_context(*, ticket: Ticket) -> dict:
    """The forms for the page, each with a fresh token; none without a linked customer."""
    if not ticket.customer_id:
        return {"billing_forms": None}
    forms_ = {name: form_class(initial={"token": uuid.uuid4().hex}) for name, form_class in FORMS.items()}
    subscription = billing_selectors.subscription_current_for_customer(customer=ticket.customer)
    return {"billing_forms": forms_, "billing_subscription": subscription}


def _note_token(action: str, token: str) -> str:
    return f"billing:{action}:{token}"


def billing_action_run(*, ticket: Ticket, actor, action: str, data: dict) -> str:
    """Run one billing action for the ticket's customer; returns what was done. Raises workspace.ActionRefused with
    the service's own words when it does not apply (nothing changed)."""
    if action in QUICK_ACTIONS and not may(actor, QUICK_ACTIONS[action]):
        raise PermissionDenied
    if not ticket.customer_id:
        raise workspace.ActionRefused(f"Ticket #{ticket.pk} is not linked to a customer.")
    token = data["token"]
    if TicketPost.objects.filter(ticket=ticket, form_token=_note_token(action, token)).exists():
        return "Already done (the form was sent twice); nothing was done again."
    try:
        summary = _perform(ticket=ticket, actor=actor, action=action, data=data)
    except (BillingActionRefused, SubscriptionChangeRefused) as exc:
        raise workspace.ActionRefused(str(exc)) from exc
    with transaction.atomic():
        _post, created = workspace.ticket_post_create(
            ticket=ticket,
            author=actor,
            kind=PostKind.NOTE,
            content=f"{workspace.staff_name(actor)} {summary}",
            form_token=_note_token(action, token),
        )
        if created:
            workspace.audit_record(
                ticket=ticket,
                actor=actor,
                action=action,
                summary=f"{workspace.staff_name(actor)} {summary}",
                details={"token": token},
            )
    return f"Done: {summary}. Noted in the ticket."


def _perform(*, ticket: Ticket, actor, action: str, data: dict) -> str:
    customer, key = ticket.customer, uuid.UUID(hex=data["token"])
    if action == "card_update_link":
        support_actions.card_update_link_send(
            customer=customer, actor=actor, reason=f"ticket #{ticket.pk}", request_key=key
        )
        return f"sent the card-update link to {customer.email}"
    if action == "pause":
        subscription = billing_selectors.subscription_current_for_customer(customer=customer)
        if subscription is None:
            raise workspace.ActionRefused("This customer has no current subscription to pause.")
        change = subscription_pause(
            subscription=subscription,
            months=data["months"],
            idempotency_key=f"ticket:{ticket.pk}:pause:{data['token']}",
            actor=actor,
        )
        if change.status == ChangeStatus.FAILED:
            raise workspace.ActionRefused(f"Stripe did not pause the subscription: {change.error}")
        state = "paused" if change.status == ChangeStatus.APPLIED else "asked Stripe to pause (still applying)"
        return f"{state} the subscription for {data['months']} month(s) (Stripe {subscription.stripe_subscription_id})"
    cents = int(data["amount"] * 100)
    credit = support_actions.goodwill_credit_grant(
        customer=customer, actor=actor, amount=cents, reason=data["reason"], request_key=key
    )
    state = "credited" if credit.status == GoodwillCreditStatus.APPLIED else "asked Stripe to credit (pending)"
    return f"{state} {cents / 100:.2f} {credit.currency.upper()} goodwill on the next invoice: {data['reason']}"
