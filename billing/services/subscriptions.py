"""A subscription's current Stripe state applied to the CRM Subscription: created (or first seen), started, its
status changes with the stage moves they mean, and the trial's end notice. Cancellations: subscription_cancellations."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers import events
from customers.lifecycle import Stage
from customers.models import Customer

from .. import selectors
from ..models import ENDED_STATUSES, Subscription, SubscriptionStatus
from ..stripe_objects import (
    ProductLookup,
    SubscriptionState,
    datetime_to_iso,
    subscription_state,
    timestamp_to_datetime,
)
from .crm_customers import crm_customer_for_stripe
from .facts import fact_record, stages_move_through, timestamp_key
from .subscription_cancellations import (
    subscription_cancel_scheduled_fact,
    subscription_cancel_unscheduled_fact,
    subscription_canceled_fact,
)
from .subscription_retention import subscription_retention_facts

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


@dataclass
class SubscriptionApplyResult:
    subscription: Subscription | None
    created: bool = False
    changed: bool = False
    status_changed: bool = False
    skipped_not_modready: bool = False
    facts: list[str] = field(default_factory=list)


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
    fact_record(
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
        stages_move_through(
            customer,
            _lapsed_path(state.status),
            cause=f"subscription first seen {state.status}",
            occurred_at=started,
            key=key,
        )
    elif state.status in ENDED_STATUSES and not is_new:
        stages_move_through(customer, [Stage.PURCHASE], cause="subscription imported", occurred_at=started, key=key)
    if state.status == SubscriptionStatus.CANCELED:
        # First seen already canceled (its created event was missed): announce the cancellation if it is recent.
        ended = state.ended_at or state.canceled_at or started
        recent_end = timezone.now() - ended <= NEW_SUBSCRIPTION_WINDOW
        subscription_canceled_fact(subscription, state, occurred_at=occurred_at, announce=recent_end)
        result.facts.append("canceled")
    elif state.cancel_at_period_end or state.cancel_at:
        subscription_cancel_scheduled_fact(subscription, state, occurred_at=occurred_at)
        result.facts.append("cancel-scheduled")


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
        stages_move_through(customer, [Stage.TRIAL], cause="subscription trial started", occurred_at=started, key=key)
        return
    path = [Stage.PURCHASE, Stage.ONBOARDING] if is_new else [Stage.PURCHASE, Stage.ACTIVE]
    if state.status == SubscriptionStatus.PAST_DUE:
        path.append(Stage.AT_RISK)
    stages_move_through(customer, path, cause="subscription started", occurred_at=started, key=key)


def _subscription_change_facts(
    subscription: Subscription,
    state: SubscriptionState,
    *,
    before: dict,
    result: SubscriptionApplyResult,
    occurred_at: datetime,
) -> None:
    """What a change of a known subscription means: a status change (with its stage moves), its end, or a
    cancellation scheduled, rescheduled or withdrawn."""
    if before["status"] != state.status:
        _subscription_status_change_facts(
            subscription, state, old_status=before["status"], result=result, occurred_at=occurred_at
        )
        if state.status == SubscriptionStatus.CANCELED:
            subscription_canceled_fact(subscription, state, occurred_at=occurred_at, announce=True)
            result.facts.append("canceled")
            return
    if state.status in ENDED_STATUSES:
        return
    result.facts += subscription_retention_facts(subscription, state, before=before, occurred_at=occurred_at)
    was_scheduled = bool(before["cancel_at_period_end"] or before["cancel_at"])
    is_scheduled = bool(state.cancel_at_period_end or state.cancel_at)
    if is_scheduled and (not was_scheduled or before["cancel_at"] != state.cancel_at):
        subscription_cancel_scheduled_fact(subscription, state, occurred_at=occurred_at)
        result.facts.append("cancel-scheduled")
    elif was_scheduled and not is_scheduled:
        subscription_cancel_unscheduled_fact(
            subscription, state, cancel_at_before=before["cancel_at"], occurred_at=occurred_at
        )
        result.facts.append("cancel-unscheduled")


def _subscription_status_change_facts(
    subscription: Subscription,
    state: SubscriptionState,
    *,
    old_status: str,
    result: SubscriptionApplyResult,
    occurred_at: datetime,
) -> None:
    sub_id, new_status = state.stripe_subscription_id, state.status
    result.status_changed = True
    key = f"subscription:{sub_id}:status:{old_status}:{new_status}:{timestamp_key(state.current_period_start)}"
    fact_record(
        customer=subscription.customer,
        key=key,
        kind="subscription.status_changed",
        summary=f"Subscription {_status_words(old_status)} -> {_status_words(new_status)}",
        occurred_at=occurred_at,
        object_type="stripe.subscription",
        object_id_=sub_id,
        domain_event=events.SUBSCRIPTION_UPDATED,
        payload={
            "subscription_id": sub_id,
            "product_id": state.product_id,
            "from_status": old_status,
            "to_status": new_status,
        },
    )
    result.facts.append(f"status:{old_status}:{new_status}")
    _status_change_stage_moves(subscription.customer, state, old_status=old_status, key=key, occurred_at=occurred_at)


def _status_change_stage_moves(
    customer: Customer, state: SubscriptionState, *, old_status: str, key: str, occurred_at: datetime
) -> None:
    """The stages a status change leads the customer through."""
    new_status = state.status
    if old_status == SubscriptionStatus.INCOMPLETE and new_status in STARTED_STATUSES:
        started = state.stripe_created or occurred_at
        _subscription_started_facts(
            customer,
            state,
            key=f"subscription:{state.stripe_subscription_id}:created",
            started=started,
            is_new=timezone.now() - started <= NEW_SUBSCRIPTION_WINDOW,
        )
    elif old_status == SubscriptionStatus.TRIALING and new_status == SubscriptionStatus.ACTIVE:
        path = [Stage.PURCHASE, Stage.ONBOARDING]
        stages_move_through(customer, path, cause="trial converted", occurred_at=occurred_at, key=key)
    elif new_status in AT_RISK_STATUSES:
        # From incomplete or trialing (never paid: a trial that ended without a payment method is paused) the
        # customer takes the path of a subscription first seen in this status, so a late event (dj-stripe
        # re-fetches the current state) ends in the same stage; elsewhere purchase is a move already made.
        never_paid = old_status in {SubscriptionStatus.INCOMPLETE, SubscriptionStatus.TRIALING}
        stages_move_through(
            customer,
            _lapsed_path(new_status) if never_paid else [Stage.AT_RISK],
            cause=f"subscription {new_status}",
            occurred_at=occurred_at,
            key=key,
        )
    elif (
        old_status == SubscriptionStatus.PAUSED
        and new_status == SubscriptionStatus.ACTIVE
        and not customer.stage_transitions.filter(to_stage=Stage.PURCHASE).exists()
    ):
        # A paused trial that now pays has bought: the purchase the provisioning panel waits for. (A paying
        # customer whose subscription was paused and resumes is simply active again, below.)
        path = [Stage.PURCHASE, Stage.ONBOARDING]
        stages_move_through(customer, path, cause="paused trial paid", occurred_at=occurred_at, key=key)
    elif old_status in AT_RISK_STATUSES and new_status == "active":
        stages_move_through(
            customer, [Stage.ACTIVE], cause="subscription active again", occurred_at=occurred_at, key=key
        )


@transaction.atomic
def subscription_trial_will_end_record(*, stripe_subscription: dict, occurred_at: datetime | None = None) -> bool:
    """customer.subscription.trial_will_end: Stripe's notice three days before a trial ends.
    https://docs.stripe.com/api/events/types#event_types-customer.subscription.trial_will_end"""
    subscription = selectors.subscription_get_by_stripe_id(stripe_subscription_id=stripe_subscription["id"])
    trial_end = timestamp_to_datetime(stripe_subscription.get("trial_end"))
    if subscription is None or trial_end is None:
        return False
    key = f"subscription:{subscription.stripe_subscription_id}:trial-will-end:{timestamp_key(trial_end)}"
    return fact_record(
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


def _status_words(status: str) -> str:
    return dict(SubscriptionStatus.choices).get(status, status).lower()


def _lapsed_path(status: str) -> list[str]:
    """The stages a never-paying subscription first seen lapsed leads through. A paused one is a trial that ended
    without a payment method: Trial, then At risk, never Purchase (the provisioning panel would take
    `customer.purchase` as "activate the server"). An unpaid one had its payments fail: Purchase, Active, At risk."""
    if status == SubscriptionStatus.PAUSED:
        return [Stage.TRIAL, Stage.AT_RISK]
    return [Stage.PURCHASE, Stage.ACTIVE, Stage.AT_RISK]
