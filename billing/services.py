"""Turning the current Stripe state into CRM records, timeline entries, lifecycle moves and domain events.

Every function here takes the *current* state of a Stripe object (re-fetched by dj-stripe for a webhook, or listed
by the daily sync) and compares it with what the CRM last stored, under a row lock. What changed becomes a fact
(created, status changed, cancel scheduled, canceled, payment failed, ...). Each fact has an idempotency key built
from Stripe ids and the Stripe state that makes it true, never from the event that told us:

    subscription:<sub_id>:created
    subscription:<sub_id>:status:<from>:<to>:<item current_period_start>
    subscription:<sub_id>:cancel-scheduled:<cancel_at>      subscription:<sub_id>:cancel-unscheduled:<cancel_at>
    subscription:<sub_id>:canceled
    subscription:<sub_id>:trial-will-end:<trial_end>
    invoice:<in_id>:payment-failed:<attempt_count>          invoice:<in_id>:payment-recovered
    invoice:<in_id>:paid
    dispute:<dp_id>:opened
    checkout-session:<cs_id>:completed

The same key is the timeline event's source_key, the domain event's key and the stage move's source_key, so a fact
found by a webhook and again by the sync (in either order), or by two workers at once, is recorded exactly once.
Because we compare with the current state, an old event processed after a newer one finds nothing to change.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers import events
from customers.lifecycle import Stage, renewal_ends_onboarding
from customers.models import Customer, TimelineEvent, TimelineSource
from customers.services import (
    customer_move_stage,
    customer_try_move_stage,
    customer_upsert,
    normalize_email,
    timeline_event_record,
)

from . import selectors
from .models import CANCELLATION_FEEDBACK, CANCELLATION_REASONS, ENDED_STATUSES, Subscription, SubscriptionStatus
from .recoveries import payment_recovery_record
from .stripe_objects import (
    ProductLookup,
    SubscriptionState,
    customer_email_and_name,
    datetime_to_iso,
    invoice_subscription_id,
    object_id,
    product_is_modready,
    subscription_state,
    timestamp_to_datetime,
)

logger = logging.getLogger(__name__)

# A subscription the CRM first sees this long after Stripe created it (the first sync of an existing account) is
# imported quietly: record, timeline and stage, but no subscription.created domain event, so nobody gets a welcome
# email for a subscription they started a year ago.
NEW_SUBSCRIPTION_WINDOW = timedelta(days=3)
STARTED_STATUSES = {SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE}
# Stripe's statuses for a subscription the customer had but is not paying for: retries failed and the subscription
# was left unpaid, or a trial ended without a payment method and it was paused
# (https://docs.stripe.com/billing/subscriptions/overview#subscription-statuses). A subscription first seen in one of
# them is not announced (no welcome), but moves the customer through the stages they must have passed, to at_risk.
LAPSED_STATUSES = {SubscriptionStatus.UNPAID, SubscriptionStatus.PAUSED}
AT_RISK_STATUSES = {SubscriptionStatus.PAST_DUE, *LAPSED_STATUSES}


class MissingCustomerEmail(Exception):
    """A Stripe customer without an email cannot become a CRM customer (email is the CRM's contact key)."""


@dataclass
class SubscriptionApplyResult:
    subscription: Subscription | None
    created: bool = False
    changed: bool = False
    status_changed: bool = False
    skipped_not_modready: bool = False
    facts: list[str] = field(default_factory=list)


def _ts_key(value: datetime | None) -> str:
    return str(int(value.timestamp())) if value else "none"


def _fact(
    *,
    customer: Customer,
    key: str,
    kind: str,
    summary: str,
    occurred_at: datetime,
    object_type: str,
    object_id_: str,
    domain_event: str | None = None,
    payload: dict | None = None,
    to_stage: str | None = None,
) -> bool:
    """Record one fact: a timeline entry, optionally a domain event and a stage move, all under the same key.
    Returns whether the timeline entry is new (False: this fact was already known)."""
    recorded = timeline_event_record(
        customer=customer,
        source=TimelineSource.STRIPE,
        source_key=key,
        kind=kind,
        occurred_at=occurred_at,
        summary=summary,
        payload=payload or {},
        object_type=object_type,
        object_id=object_id_,
    )
    if domain_event:
        events.domain_event_publish(
            name=domain_event, key=key, customer=customer, payload=payload or {}, occurred_at=occurred_at
        )
    if to_stage:
        customer_try_move_stage(
            customer=customer, to_stage=to_stage, cause=kind, occurred_at=occurred_at, source_key=key
        )
    return recorded.created


def _move_along(customer: Customer, stages: list[str], *, cause: str, occurred_at: datetime, key: str) -> None:
    """Move through several stages in order (discovery -> purchase -> onboarding); refused steps are skipped."""
    for stage in stages:
        customer_try_move_stage(
            customer=customer, to_stage=stage, cause=cause, occurred_at=occurred_at, source_key=f"{key}:{stage}"
        )


def crm_customer_for_stripe(*, stripe_customer_id: str, stripe_customer: dict | None) -> Customer:
    """The CRM customer for a Stripe customer, created or updated through customers.services (Stripe id first)."""
    email, name = customer_email_and_name(stripe_customer)
    existing = Customer.objects.filter(stripe_customer_id=stripe_customer_id).first() if stripe_customer_id else None
    if existing and (not email or existing.email == normalize_email(email)) and (not name or existing.name == name):
        return existing  # nothing to change: skip customer_upsert's locking read
    if not email and not stripe_customer_id:
        raise MissingCustomerEmail("A Stripe object with neither a customer id nor an email")
    fields = {"name": name} if name else {}
    customer, _ = customer_upsert(email=email, stripe_customer_id=stripe_customer_id, **fields)
    return customer


@transaction.atomic
def subscription_apply_stripe_state(
    *,
    stripe_subscription: dict,
    product_lookup: ProductLookup,
    stripe_customer: dict | None,
    djstripe_subscription_pk: int | None = None,
    occurred_at: datetime | None = None,
) -> SubscriptionApplyResult:
    """Upsert the CRM Subscription from the current Stripe subscription and record what changed.

    Payload mapping: https://docs.stripe.com/api/subscriptions/object (see billing.stripe_objects).
    """
    state = subscription_state(stripe_subscription, product_lookup=product_lookup)
    if state is None:
        return SubscriptionApplyResult(subscription=None, skipped_not_modready=True)
    occurred_at = occurred_at or timezone.now()
    customer = crm_customer_for_stripe(stripe_customer_id=state.stripe_customer_id, stripe_customer=stripe_customer)

    subscription = (
        Subscription.objects.select_for_update().filter(stripe_subscription_id=state.stripe_subscription_id).first()
    )
    created = False
    if subscription is None:
        try:
            with transaction.atomic():
                subscription = Subscription.objects.create(
                    customer=customer, djstripe_subscription_id=djstripe_subscription_pk, **state.model_fields()
                )
            created = True
        except IntegrityError:
            # Another worker created it between our read and insert: continue as an update of its row.
            subscription = Subscription.objects.select_for_update().get(
                stripe_subscription_id=state.stripe_subscription_id
            )

    result = SubscriptionApplyResult(subscription=subscription, created=created)
    if created:
        _subscription_created_facts(subscription, state, result=result, occurred_at=occurred_at)
        return result

    before = {name: getattr(subscription, name) for name in state.model_fields()}
    changed = [name for name, value in state.model_fields().items() if before[name] != value]
    if djstripe_subscription_pk and subscription.djstripe_subscription_id != djstripe_subscription_pk:
        subscription.djstripe_subscription_id = djstripe_subscription_pk
        changed.append("djstripe_subscription")
    if subscription.customer_id != customer.pk:
        subscription.customer = customer
        changed.append("customer")
    if not changed:
        return result
    for name in changed:
        if name not in {"djstripe_subscription", "customer"}:
            setattr(subscription, name, getattr(state, name))
    subscription.save(update_fields=[*changed, "updated_at"])
    result.changed = True
    _subscription_change_facts(subscription, state, before=before, result=result, occurred_at=occurred_at)
    return result


def _subscription_created_payload(state: SubscriptionState) -> dict:
    return {
        "subscription_id": state.stripe_subscription_id,
        "product_id": state.product_id,
        "product_name": state.product_name,
        "price_id": state.price_id,
        "status": state.status,
        "amount": state.amount,
        "currency": state.currency,
        "interval": state.interval,
        "trial_end": datetime_to_iso(state.trial_end),
    }


def _subscription_created_facts(
    subscription: Subscription, state: SubscriptionState, *, result: SubscriptionApplyResult, occurred_at: datetime
) -> None:
    customer = subscription.customer
    sub_id = state.stripe_subscription_id
    key = f"subscription:{sub_id}:created"
    started = state.stripe_created or occurred_at
    is_new = state.status not in ENDED_STATUSES and timezone.now() - started <= NEW_SUBSCRIPTION_WINDOW
    amount = f"{state.amount / 100:.2f} {state.currency.upper()}/{state.interval}" if state.interval else ""
    _fact(
        customer=customer,
        key=key,
        kind="subscription.created" if is_new else "subscription.imported",
        summary=" ".join(
            f"Subscribed to {state.product_name or state.product_id} {amount} ({_status_words(state.status)})".split()
        ),
        occurred_at=started,
        object_type="stripe.subscription",
        object_id_=sub_id,
        payload=_subscription_created_payload(state),
    )
    result.facts.append("created")
    if state.status in STARTED_STATUSES:
        _subscription_started_facts(customer, state, key=key, started=started, is_new=is_new)
    elif state.status in LAPSED_STATUSES:
        _move_along(
            customer,
            [Stage.PURCHASE, Stage.ACTIVE, Stage.AT_RISK],
            cause=f"subscription first seen {state.status}",
            occurred_at=started,
            key=key,
        )
    elif state.status in ENDED_STATUSES and not is_new:
        _move_along(customer, [Stage.PURCHASE], cause="subscription imported", occurred_at=started, key=key)
    if state.status == SubscriptionStatus.CANCELED:
        # First seen already canceled (its created event was missed): announce the cancellation if it is recent.
        ended = state.ended_at or state.canceled_at or started
        recent_end = timezone.now() - ended <= NEW_SUBSCRIPTION_WINDOW
        _subscription_canceled_fact(subscription, state, result=result, occurred_at=occurred_at, announce=recent_end)
    elif state.cancel_at_period_end or state.cancel_at:
        _subscription_cancel_scheduled_fact(subscription, state, result=result, occurred_at=occurred_at)


def _subscription_started_facts(
    customer: Customer, state: SubscriptionState, *, key: str, started: datetime, is_new: bool
) -> None:
    """The customer has the subscription (trialing, active or past due): announce it and move the stage. Checkout
    creates subscriptions as `incomplete` until the first payment succeeds; those start when they leave it."""
    if is_new:
        events.domain_event_publish(
            name=events.SUBSCRIPTION_CREATED,
            key=key,
            customer=customer,
            payload=_subscription_created_payload(state),
            occurred_at=started,
        )
    if state.status == SubscriptionStatus.TRIALING:
        if is_new:  # as a website trial does (integrations/trials/sync.py): rules on trial.started see both
            events.domain_event_publish(
                name=events.TRIAL_STARTED,
                key=f"{key}:trial",
                customer=customer,
                payload=_subscription_created_payload(state),
                occurred_at=started,
            )
        _move_along(customer, [Stage.TRIAL], cause="subscription trial started", occurred_at=started, key=key)
        return
    path = [Stage.PURCHASE, Stage.ONBOARDING] if is_new else [Stage.PURCHASE, Stage.ACTIVE]
    if state.status == SubscriptionStatus.PAST_DUE:
        path.append(Stage.AT_RISK)
    _move_along(customer, path, cause="subscription started", occurred_at=started, key=key)


def _subscription_change_facts(
    subscription: Subscription,
    state: SubscriptionState,
    *,
    before: dict,
    result: SubscriptionApplyResult,
    occurred_at: datetime,
) -> None:
    customer = subscription.customer
    sub_id = state.stripe_subscription_id
    old_status, new_status = before["status"], state.status
    if old_status != new_status:
        result.status_changed = True
        key = f"subscription:{sub_id}:status:{old_status}:{new_status}:{_ts_key(state.current_period_start)}"
        payload = {
            "subscription_id": sub_id,
            "product_id": state.product_id,
            "from_status": old_status,
            "to_status": new_status,
        }
        _fact(
            customer=customer,
            key=key,
            kind="subscription.status_changed",
            summary=f"Subscription {_status_words(old_status)} -> {_status_words(new_status)}",
            occurred_at=occurred_at,
            object_type="stripe.subscription",
            object_id_=sub_id,
            domain_event=events.SUBSCRIPTION_UPDATED,
            payload=payload,
        )
        result.facts.append(f"status:{old_status}:{new_status}")
        if old_status == SubscriptionStatus.INCOMPLETE and new_status in STARTED_STATUSES:
            started = state.stripe_created or occurred_at
            _subscription_started_facts(
                customer,
                state,
                key=f"subscription:{sub_id}:created",
                started=started,
                is_new=timezone.now() - started <= NEW_SUBSCRIPTION_WINDOW,
            )
        elif old_status == SubscriptionStatus.TRIALING and new_status == SubscriptionStatus.ACTIVE:
            _move_along(
                customer, [Stage.PURCHASE, Stage.ONBOARDING], cause="trial converted", occurred_at=occurred_at, key=key
            )
        elif new_status in AT_RISK_STATUSES:
            # From incomplete (never started) the customer passes through purchase first; elsewhere it is refused
            # and skipped as a move already made.
            _move_along(
                customer,
                [Stage.PURCHASE, Stage.ACTIVE, Stage.AT_RISK]
                if old_status == SubscriptionStatus.INCOMPLETE
                else [Stage.AT_RISK],
                cause=f"subscription {new_status}",
                occurred_at=occurred_at,
                key=key,
            )
        elif old_status in AT_RISK_STATUSES and new_status == "active":
            _move_along(customer, [Stage.ACTIVE], cause="subscription active again", occurred_at=occurred_at, key=key)
        if new_status == SubscriptionStatus.CANCELED:
            _subscription_canceled_fact(subscription, state, result=result, occurred_at=occurred_at, announce=True)
            return

    was_scheduled = bool(before["cancel_at_period_end"] or before["cancel_at"])
    is_scheduled = bool(state.cancel_at_period_end or state.cancel_at)
    if new_status in ENDED_STATUSES:
        return
    if is_scheduled and (not was_scheduled or before["cancel_at"] != state.cancel_at):
        _subscription_cancel_scheduled_fact(subscription, state, result=result, occurred_at=occurred_at)
    elif was_scheduled and not is_scheduled:
        key = f"subscription:{sub_id}:cancel-unscheduled:{_ts_key(before['cancel_at'])}"
        _fact(
            customer=customer,
            key=key,
            kind="subscription.cancel_unscheduled",
            summary="Scheduled cancellation withdrawn",
            occurred_at=occurred_at,
            object_type="stripe.subscription",
            object_id_=sub_id,
        )
        result.facts.append("cancel-unscheduled")
        if new_status == SubscriptionStatus.ACTIVE:
            _move_along(customer, [Stage.ACTIVE], cause="cancellation withdrawn", occurred_at=occurred_at, key=key)


def _subscription_cancel_scheduled_fact(
    subscription: Subscription, state: SubscriptionState, *, result: SubscriptionApplyResult, occurred_at: datetime
) -> None:
    # With cancel_at_period_end Stripe ends the subscription at the period end; cancel_at names a date itself.
    cancel_at = state.cancel_at or state.current_period_end
    key = f"subscription:{state.stripe_subscription_id}:cancel-scheduled:{_ts_key(cancel_at)}"
    _fact(
        customer=subscription.customer,
        key=key,
        kind="subscription.cancel_scheduled",
        summary=f"Cancellation scheduled for {cancel_at:%Y-%m-%d}" if cancel_at else "Cancellation scheduled",
        occurred_at=occurred_at,
        object_type="stripe.subscription",
        object_id_=state.stripe_subscription_id,
        domain_event=events.SUBSCRIPTION_CANCEL_SCHEDULED,
        payload={
            "subscription_id": state.stripe_subscription_id,
            "product_id": state.product_id,
            "cancel_at": datetime_to_iso(cancel_at),
        },
        to_stage=Stage.AT_RISK,
    )
    result.facts.append("cancel-scheduled")


def _subscription_canceled_fact(
    subscription: Subscription,
    state: SubscriptionState,
    *,
    result: SubscriptionApplyResult,
    occurred_at: datetime,
    announce: bool,
) -> None:
    sub_id = state.stripe_subscription_id
    key = f"subscription:{sub_id}:canceled"
    ended = state.ended_at or state.canceled_at or occurred_at
    # In Stripe's dashboard words ("Not using the service enough"), not its codes ("unused").
    reason = CANCELLATION_FEEDBACK.get(state.cancellation_feedback) or CANCELLATION_REASONS.get(
        state.cancellation_reason, state.cancellation_reason
    )
    customer = subscription.customer
    _fact(
        customer=customer,
        key=key,
        kind="subscription.canceled",
        summary=f"Subscription canceled ({reason})" if reason else "Subscription canceled",
        occurred_at=ended,
        object_type="stripe.subscription",
        object_id_=sub_id,
        domain_event=events.SUBSCRIPTION_CANCELED if announce else None,
        payload={
            "subscription_id": sub_id,
            "product_id": state.product_id,
            "product_name": state.product_name,
            "cancellation_reason": state.cancellation_reason,
            "feedback": state.cancellation_feedback,
            "comment": state.cancellation_comment,
        },
    )
    result.facts.append("canceled")
    # A customer with another current ModReady subscription has not churned.
    if not selectors.customer_has_other_current_subscription(customer=customer, exclude_stripe_subscription_id=sub_id):
        _move_along(customer, [Stage.CHURNED], cause="subscription canceled", occurred_at=ended, key=key)


@transaction.atomic
def subscription_trial_will_end_record(*, stripe_subscription: dict, occurred_at: datetime | None = None) -> bool:
    """customer.subscription.trial_will_end: Stripe's notice three days before a trial ends.
    https://docs.stripe.com/api/events/types#event_types-customer.subscription.trial_will_end"""
    subscription = selectors.subscription_get_by_stripe_id(stripe_subscription_id=stripe_subscription["id"])
    trial_end = timestamp_to_datetime(stripe_subscription.get("trial_end"))
    if subscription is None or trial_end is None:
        return False
    key = f"subscription:{subscription.stripe_subscription_id}:trial-will-end:{_ts_key(trial_end)}"
    return _fact(
        customer=subscription.customer,
        key=key,
        kind="subscription.trial_will_end",
        summary=f"Trial ends {trial_end:%Y-%m-%d %H:%M} UTC",
        occurred_at=occurred_at or timezone.now(),
        object_type="stripe.subscription",
        object_id_=subscription.stripe_subscription_id,
        domain_event=events.SUBSCRIPTION_TRIAL_ENDING,
        payload={
            "subscription_id": subscription.stripe_subscription_id,
            "product_id": subscription.product_id,
            "trial_end": datetime_to_iso(trial_end),
        },
    )


@transaction.atomic
def invoice_apply_stripe_state(
    *, stripe_invoice: dict, occurred_at: datetime | None = None, record_plain_payments: bool = True
) -> list[str]:
    """Record payment facts from the current state of a subscription invoice. Returns the facts recorded.

    Mapping: https://docs.stripe.com/api/invoices/object. An open invoice with attempt_count >= 1 has had a failed
    attempt (`next_payment_attempt` is when Stripe retries, null when it will not) while its subscription can still
    be saved (not canceled or incomplete_expired: after the end it is no failure); a paid invoice that failed
    before (attempt_count > 1, or a failure we recorded) is a recovery. Invoices of non-ModReady subscriptions, and
    invoices without a subscription, are ignored. The daily sync passes record_plain_payments=False: it looks for
    failures and recoveries only, not for every ordinary payment.
    """
    sub_id = invoice_subscription_id(stripe_invoice)
    # Locked: the subscription's status decides below whether an open invoice is still a failure, and a cancellation
    # applied concurrently must either come first (and be seen) or wait for this to commit.
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(stripe_subscription_id=sub_id)
        .first()
        if sub_id
        else None
    )
    if subscription is None:
        return []
    invoice_id = stripe_invoice["id"]
    status = stripe_invoice.get("status")
    attempts = int(stripe_invoice.get("attempt_count") or 0)
    occurred_at = occurred_at or timezone.now()
    customer = subscription.customer
    common = {"object_type": "stripe.invoice", "object_id_": invoice_id, "occurred_at": occurred_at}
    facts: list[str] = []
    if status == "open" and attempts >= 1 and subscription.status in ENDED_STATUSES:
        # Stripe leaves the last failed invoice open when it cancels the subscription after its retries: there is
        # nothing left to save, so it is no payment failure (no dunning, no at_risk). The cancellation is the fact.
        logger.info("Invoice %s: open after subscription %s ended; not a payment failure", invoice_id, sub_id)
    elif status == "open" and attempts >= 1:
        next_attempt = timestamp_to_datetime(stripe_invoice.get("next_payment_attempt"))
        amount_due = int(stripe_invoice.get("amount_due") or 0)
        currency = (stripe_invoice.get("currency") or "").lower()
        retry = f"; next retry {next_attempt:%Y-%m-%d %H:%M} UTC" if next_attempt else "; no further retries"
        _fact(
            customer=customer,
            key=f"invoice:{invoice_id}:payment-failed:{attempts}",
            kind="payment.failed",
            summary=f"Payment of {amount_due / 100:.2f} {currency.upper()} failed (attempt {attempts}){retry}",
            domain_event=events.PAYMENT_FAILED,
            payload={
                "invoice_id": invoice_id,
                "subscription_id": sub_id,
                "product_id": subscription.product_id,
                "attempt_count": attempts,
                "next_payment_attempt": datetime_to_iso(next_attempt),
                "amount_due": amount_due,
                "currency": currency,
                "hosted_invoice_url": stripe_invoice.get("hosted_invoice_url") or "",
            },
            to_stage=Stage.AT_RISK,
            **common,
        )
        facts.append("payment-failed")
    elif status == "paid":
        failed_before = (
            attempts > 1
            or TimelineEvent.objects.filter(
                source=TimelineSource.STRIPE, object_id=invoice_id, kind="payment.failed"
            ).exists()
        )
        paid_at = timestamp_to_datetime((stripe_invoice.get("status_transitions") or {}).get("paid_at"))
        common["occurred_at"] = paid_at or occurred_at
        payload = {"invoice_id": invoice_id, "subscription_id": sub_id, "product_id": subscription.product_id}
        if failed_before:
            _fact(
                customer=customer,
                key=f"invoice:{invoice_id}:payment-recovered",
                kind="payment.recovered",
                summary="Payment recovered after a failure",
                domain_event=events.PAYMENT_RECOVERED,
                payload=payload,
                to_stage=Stage.ACTIVE,
                **common,
            )
            payment_recovery_record(customer_id=customer.pk, invoice_id=invoice_id)
            facts.append("payment-recovered")
        elif record_plain_payments:
            amount_paid = int(stripe_invoice.get("amount_paid") or 0)
            currency = (stripe_invoice.get("currency") or "").upper()
            _fact(
                customer=customer,
                key=f"invoice:{invoice_id}:paid",
                kind="payment.succeeded",
                summary=f"Paid {amount_paid / 100:.2f} {currency}",
                domain_event=events.PAYMENT_SUCCEEDED,
                payload={**payload, "amount_paid": amount_paid, "currency": currency.lower()},
                **common,
            )
            facts.append("payment-succeeded")
        if renewal_ends_onboarding(
            stage=customer.lifecycle_stage,
            onboarding_since=customer.stage_changed_at,
            billing_reason=stripe_invoice.get("billing_reason") or "",
            paid_at=common["occurred_at"],
        ):
            # The Onboarding -> Active rule's first path (customers/lifecycle.py): the first renewal is paid.
            moved = customer_move_stage(
                customer=customer,
                to_stage=Stage.ACTIVE,
                from_stage=Stage.ONBOARDING,
                cause="first renewal paid",
                occurred_at=common["occurred_at"],
                source_key=f"invoice:{invoice_id}:onboarding-done",
            )
            if moved:
                facts.append("onboarding-done")
    return facts


@transaction.atomic
def dispute_opened_record(
    *, stripe_dispute: dict, stripe_customer_id: str, occurred_at: datetime | None = None
) -> bool:
    """charge.dispute.created: https://docs.stripe.com/api/disputes/object. Counts only for customers the CRM
    knows from a ModReady subscription or checkout (a dispute names a charge, not a product)."""
    customer = Customer.objects.filter(stripe_customer_id=stripe_customer_id).first() if stripe_customer_id else None
    if customer is None:
        return False
    dispute_id = stripe_dispute["id"]
    amount = int(stripe_dispute.get("amount") or 0)
    currency = (stripe_dispute.get("currency") or "").lower()
    reason = stripe_dispute.get("reason") or ""
    return _fact(
        customer=customer,
        key=f"dispute:{dispute_id}:opened",
        kind="dispute.opened",
        summary=f"Dispute opened: {amount / 100:.2f} {currency.upper()} ({reason})",
        occurred_at=timestamp_to_datetime(stripe_dispute.get("created")) or occurred_at or timezone.now(),
        object_type="stripe.dispute",
        object_id_=dispute_id,
        domain_event=events.DISPUTE_OPENED,
        payload={
            "dispute_id": dispute_id,
            "charge_id": object_id(stripe_dispute.get("charge")),
            "amount": amount,
            "currency": currency,
            "reason": reason,
        },
        to_stage=Stage.AT_RISK,
    )


@transaction.atomic
def checkout_completed_record(
    *,
    stripe_session: dict,
    line_items: list[dict],
    product_lookup: ProductLookup,
    occurred_at: datetime | None = None,
    stripe_event_type: str = "checkout.session.completed",
) -> bool:
    """checkout.session.completed and checkout.session.async_payment_succeeded (a delayed payment method that has
    now paid): https://docs.stripe.com/api/checkout/sessions/object, line items from
    https://docs.stripe.com/api/checkout/sessions/line_items. Counts when any line item is a ModReady product or
    the crowdfunding VIP reservation (STRIPE_VIP_RESERVATION_PRODUCT_ID, which integrations fulfils)."""
    product_ids = []
    vip_product_id = settings.STRIPE_VIP_RESERVATION_PRODUCT_ID
    for item in line_items:
        product = (item.get("price") or {}).get("product")
        product_id = object_id(product)
        if (vip_product_id and product_id == vip_product_id) or product_is_modready(
            product_id, product if isinstance(product, dict) else product_lookup(product_id)
        ):
            product_ids.append(product_id)
    if not product_ids:
        return False
    details = stripe_session.get("customer_details") or {}
    email = (details.get("email") or stripe_session.get("customer_email") or "").strip()
    stripe_customer_id = object_id(stripe_session.get("customer"))
    if not email and not stripe_customer_id:
        raise MissingCustomerEmail(f"Checkout session {stripe_session['id']} has neither email nor customer")
    fields = {"name": details["name"]} if details.get("name") else {}
    customer, _ = customer_upsert(email=email, stripe_customer_id=stripe_customer_id, **fields)
    session_id = stripe_session["id"]
    amount_total = int(stripe_session.get("amount_total") or 0)
    currency = (stripe_session.get("currency") or "").lower()
    return _fact(
        customer=customer,
        # The completed event of a delayed payment says unpaid; the later async_payment_succeeded is its own fact.
        key=f"checkout-session:{session_id}:completed"
        if stripe_event_type == "checkout.session.completed"
        else f"checkout-session:{session_id}:async-payment-succeeded",
        kind="checkout.completed",
        summary=f"Checkout completed: {amount_total / 100:.2f} {currency.upper()} ({stripe_session.get('mode')}, "
        f"{stripe_session.get('payment_status') or 'unknown'})",
        occurred_at=occurred_at or timestamp_to_datetime(stripe_session.get("created")) or timezone.now(),
        object_type="stripe.checkout_session",
        object_id_=session_id,
        domain_event=events.CHECKOUT_COMPLETED,
        payload={
            "session_id": session_id,
            "mode": stripe_session.get("mode") or "",
            "payment_status": stripe_session.get("payment_status") or "",
            "product_ids": product_ids,
            "amount_total": amount_total,
            "currency": currency,
            "customer_email": email,
            "stripe_event_type": stripe_event_type,
        },
    )


@transaction.atomic
def stripe_customer_apply(*, stripe_customer: dict) -> Customer | None:
    """customer.created/updated: keep a known CRM customer's email and name in step with Stripe
    (https://docs.stripe.com/api/customers/object). Unknown Stripe customers are not created here: only a ModReady
    subscription or checkout makes someone a CRM customer."""
    stripe_customer_id = stripe_customer.get("id") or ""
    if not Customer.objects.filter(stripe_customer_id=stripe_customer_id).exists():
        return None
    return crm_customer_for_stripe(stripe_customer_id=stripe_customer_id, stripe_customer=stripe_customer)


def _status_words(status: str) -> str:
    return dict(SubscriptionStatus.choices).get(status, status).lower()
