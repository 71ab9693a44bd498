"""Billing's actions for Support, from the customer page's quick actions and the support ticket page: send the
customer their card-update link, and give a goodwill credit. Each is a quick action of the audited registry
(customers/staff_actions.py: one `StaffAction` row and a timeline entry, in the transaction of the change), so the
customer page and the ticket page leave the same audit whichever calls.

- `card_update_link_send`: a `CardUpdateLinkSend` row (its `request_key` unique: the same form posted twice sends
  once) and the domain event `card_update_link.requested` keyed on the staff action, which the shipped
  "Card-update link" rule turns into one transactional email carrying `card_update_url` (billing/card_update_links.py).
- `goodwill_credit_grant`: a `GoodwillCredit` row is committed first (pending), then Stripe is asked for a customer
  balance transaction (a negative amount: a credit taken off the next invoice,
  https://docs.stripe.com/api/customer_balance_transactions/create) under the idempotency key
  `goodwill-credit:<row id>`. A lost answer leaves the row pending; `goodwill_credit_apply` (the same form posted
  again with the same request key, or the retry schedule) asks again under the same key with the same amount, so
  Stripe credits once. Stripe remembers a key for 24 hours only, so a credit still pending after RETRY_WITHIN is not
  asked again (a new request under the old key could credit twice): it stays pending with a note for staff to check
  the customer's balance in Stripe. While a credit for a customer is pending within that window (its outcome unknown)
  no other goodwill credit for them can be granted, so a reloaded page cannot ask for the same credit under a new key.
  A staff member may grant BILLING_GOODWILL_CREDIT_LIMIT minor units over 30 days (pending and applied credits
  count); above it the grant is refused with the figures. Superusers are not limited.
"""

from datetime import timedelta
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from customers import events
from customers.models import Customer, StaffActionKind
from customers.staff_actions import ActionRefused, Call, Done, Outcome, QuickAction, action_run, staff_action_register

from . import stripe_customers
from .card_update_links import card_update_url
from .models import CardUpdateLinkSend, GoodwillCredit, GoodwillCreditStatus
from .selectors import subscription_current_for_customer

LIMIT_WINDOW = timedelta(days=30)
# Stripe remembers an Idempotency-Key for 24 hours (https://docs.stripe.com/api/idempotent_requests): a credit is asked
# again only well within that, counted from its first request (made as its row commits).
RETRY_WITHIN = timedelta(hours=23)
KEY_EXPIRED_NOTE = (
    "Stripe's answer was lost and its idempotency key has expired, so it is not asked again: check the customer's "
    "balance in Stripe (metadata goodwill_credit_id) before granting another."
)


# --- the public services (the ticket page calls these) ---------------------------------------------------------------


def card_update_link_send(*, customer: Customer, actor, reason: str = "", request_key: UUID | None = None) -> Done:
    """Email the customer their card-update link (one transactional email per staff action), audited. Raises
    ActionRefused (no Stripe customer, no email address, or this request_key was sent already)."""
    return action_run(
        name=StaffActionKind.CARD_UPDATE_LINK_SEND,
        actor=actor,
        customer=customer,
        data={"reason": reason, "request_key": request_key},
    )


def goodwill_credit_grant(
    *, customer: Customer, actor, amount: int, reason: str, request_key: UUID | None = None
) -> GoodwillCredit:
    """Credit `amount` minor units (customer's currency) on the customer's next invoice through Stripe, audited.
    Returns the credit (status applied, or pending when Stripe's answer was lost: calling again with the same
    request_key retries it once more under the same Stripe key). Raises ActionRefused (no reason, not a Stripe
    customer, above the staff member's limit, Stripe refused)."""
    if request_key is not None:
        known = GoodwillCredit.objects.filter(request_key=request_key, customer=customer).first()
        if known is not None:
            return goodwill_credit_apply(credit_id=known.pk) if known.status == GoodwillCreditStatus.PENDING else known
    done = action_run(
        name=StaffActionKind.GOODWILL_CREDIT,
        actor=actor,
        customer=customer,
        data={"reason": reason, "amount": amount, "request_key": request_key},
    )
    # Stripe was asked once the credit's row committed (the action's on_commit): read what it answered.
    return GoodwillCredit.objects.get(staff_action=done.audit)


def goodwill_credit_apply(*, credit_id: int) -> GoodwillCredit:
    """Ask Stripe for the credit's balance transaction (again), under its own key; safe to call any number of times."""
    credit = GoodwillCredit.objects.select_related("customer").get(pk=credit_id)
    if credit.status != GoodwillCreditStatus.PENDING:
        return credit
    if credit.created_at < timezone.now() - RETRY_WITHIN:
        GoodwillCredit.objects.filter(pk=credit.pk).update(error=KEY_EXPIRED_NOTE, updated_at=timezone.now())
        credit.refresh_from_db()
        return credit
    try:
        transaction_id = stripe_customers.stripe_customer_credit(
            stripe_customer_id=credit.customer.stripe_customer_id,
            amount=credit.amount,
            currency=credit.currency,
            description=f"Goodwill credit: {credit.reason}"[:350],
            idempotency_key=f"goodwill-credit:{credit.pk}",
            metadata={"goodwill_credit_id": str(credit.pk)},
        )
    except stripe_customers.StripeCustomerError as exc:
        if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (409, 429):
            GoodwillCredit.objects.filter(pk=credit.pk, status=GoodwillCreditStatus.PENDING).update(
                status=GoodwillCreditStatus.REFUSED, error=str(exc)[:2000], updated_at=timezone.now()
            )
        else:  # may have been applied: stays pending, retried under the same key
            GoodwillCredit.objects.filter(pk=credit.pk).update(error=str(exc)[:2000], updated_at=timezone.now())
        credit.refresh_from_db()
        return credit
    GoodwillCredit.objects.filter(pk=credit.pk, status=GoodwillCreditStatus.PENDING).update(
        status=GoodwillCreditStatus.APPLIED,
        stripe_balance_transaction_id=transaction_id,
        error="",
        updated_at=timezone.now(),
    )
    credit.refresh_from_db()
    return credit


def goodwill_credits_retry_pending(*, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Schedule: ask again for the credits whose answer was lost (same key, same amount), while Stripe still remembers
    the key. Returns how many applied."""
    now = timezone.now()
    due = GoodwillCredit.objects.filter(
        status=GoodwillCreditStatus.PENDING, updated_at__lt=now - older_than, created_at__gte=now - RETRY_WITHIN
    ).values_list("pk", flat=True)
    return sum(goodwill_credit_apply(credit_id=pk).status == GoodwillCreditStatus.APPLIED for pk in due)


def goodwill_granted_recently(*, actor, now=None) -> int:
    """What `actor` has granted over the last 30 days (pending and applied), in minor units."""
    since = (now or timezone.now()) - LIMIT_WINDOW
    total = (
        GoodwillCredit.objects.filter(granted_by=actor, created_at__gte=since)
        .exclude(status=GoodwillCreditStatus.REFUSED)
        .aggregate(total=Sum("amount"))["total"]
    )
    return int(total or 0)


# --- the quick actions (the audited runner calls these inside its transaction) ---------------------------------------


def _card_update_link(call: Call, *, request_key: UUID | None = None) -> Outcome:
    customer = call.customer
    url = card_update_url(customer=customer)
    if not url:
        raise ActionRefused("This customer has no Stripe customer: there is no card to update.")
    if not customer.email:
        raise ActionRefused("This customer has no email address to send the link to.")
    try:  # the unique request_key decides, also when two posts of one form arrive at once
        with transaction.atomic():
            sent = CardUpdateLinkSend.objects.create(
                customer=customer, staff_action=call.audit, request_key=request_key
            )
    except IntegrityError:
        raise ActionRefused("This link was sent already (the same form was posted twice).") from None
    events.domain_event_publish(
        name=events.CARD_UPDATE_LINK_REQUESTED,
        key=f"staff-action:{call.audit.pk}:card-update-link",
        customer=customer,
        payload={"staff_action_id": call.audit.pk, "requested_by": call.actor.get_username()},
        occurred_at=timezone.now(),
    )
    return Outcome(f"sent the card-update link to {customer.email}", {"card_update_link_send_id": sent.pk})


def _goodwill_credit(call: Call, *, amount: int, request_key: UUID | None = None) -> Outcome:
    customer = call.customer
    if not call.reason.strip():
        raise ActionRefused("A goodwill credit needs a reason (the customer sees it on the invoice).")
    if not customer.stripe_customer_id:
        raise ActionRefused("This customer has no Stripe customer: there is no invoice to credit.")
    subscription = subscription_current_for_customer(customer=customer)
    currency = (subscription.currency if subscription else "") or ""
    if not currency:
        raise ActionRefused("This customer has no current subscription, so there is no next invoice to credit.")
    _refuse_while_a_credit_is_unanswered(customer)
    if not call.actor.is_superuser:
        # One staff member's grants one at a time, so two at once cannot both pass the limit.
        get_user_model().objects.select_for_update().filter(pk=call.actor.pk).first()
        granted, limit = goodwill_granted_recently(actor=call.actor), settings.BILLING_GOODWILL_CREDIT_LIMIT
        if granted + amount > limit:
            raise ActionRefused(
                f"Above your goodwill limit: you have granted {granted / 100:,.2f} of {limit / 100:,.2f} in the last "
                f"30 days, and {amount / 100:,.2f} more would pass it. Ask an owner to grant it."
            )
    credit = GoodwillCredit.objects.create(
        customer=customer,
        staff_action=call.audit,
        granted_by=call.actor,
        amount=amount,
        currency=currency.lower(),
        reason=call.reason[:500],
        request_key=request_key,
    )
    # Asked only once the row is committed, so a lost answer leaves a row to retry under the same key.
    transaction.on_commit(lambda: goodwill_credit_apply(credit_id=credit.pk))
    return Outcome(
        f"asked Stripe for a goodwill credit of {credit.amount_display} on the next invoice (its answer is in the "
        "customer's goodwill credits)",
        {"goodwill_credit_id": credit.pk, "amount": amount, "currency": credit.currency},
    )


def _refuse_while_a_credit_is_unanswered(customer: Customer) -> None:
    """A credit whose answer was lost may have been applied: another one now, under a new key, could be the same
    credit twice (a reloaded page has a new form token). The customer's row is locked so two grants take turns. A
    credit unanswered for longer than RETRY_WITHIN is no longer asked and carries KEY_EXPIRED_NOTE for staff."""
    Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk", flat=True).first()
    unanswered = GoodwillCredit.objects.filter(
        customer=customer, status=GoodwillCreditStatus.PENDING, created_at__gte=timezone.now() - RETRY_WITHIN
    ).first()
    if unanswered is not None:
        raise ActionRefused(
            f"A goodwill credit of {unanswered.amount_display} for this customer is still waiting for Stripe's "
            "answer and is asked again by itself (same key, so at most once). Grant another only once it shows."
        )


def billing_staff_actions_register() -> None:
    """Add billing's quick actions to the registry (billing/apps.py, at start)."""
    staff_action_register(
        QuickAction(
            StaffActionKind.CARD_UPDATE_LINK_SEND,
            "billing.add_cardupdatelinksend",
            {"request_key": forms.UUIDField(required=False)},
            _card_update_link,
        ),
        QuickAction(
            StaffActionKind.GOODWILL_CREDIT,
            "billing.add_goodwillcredit",
            {
                "amount": forms.IntegerField(min_value=1, max_value=10_000_000, label="Amount in cents"),
                "request_key": forms.UUIDField(required=False),
            },
            _goodwill_credit,
        ),
    )
