"""A subscription's scheduled cancellation (and its withdrawal) and its end, as facts."""

from datetime import datetime

from customers import events
from customers.lifecycle import Stage
from customers.models import Customer

from .. import selectors
from ..models import CANCELLATION_FEEDBACK, CANCELLATION_REASONS, Subscription, SubscriptionStatus
from ..stripe_objects import SubscriptionState, datetime_to_iso
from .facts import fact_record, stages_move_through, timestamp_key


def subscription_cancel_scheduled_fact(
    subscription: Subscription, state: SubscriptionState, *, occurred_at: datetime
) -> None:
    # With cancel_at_period_end Stripe ends the subscription at the period end; cancel_at names a date itself.
    cancel_at = state.cancel_at or state.current_period_end
    key = f"subscription:{state.stripe_subscription_id}:cancel-scheduled:{timestamp_key(cancel_at)}"
    fact_record(
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
            "feedback": state.cancellation_feedback,
            "comment": state.cancellation_comment,
        },
        to_stage=Stage.AT_RISK,
    )


def subscription_canceled_fact(
    subscription: Subscription, state: SubscriptionState, *, occurred_at: datetime, announce: bool
) -> None:
    sub_id = state.stripe_subscription_id
    key = f"subscription:{sub_id}:canceled"
    ended = state.ended_at or state.canceled_at or occurred_at
    # In Stripe's dashboard words ("Not using the service enough"), not its codes ("unused").
    reason = CANCELLATION_FEEDBACK.get(state.cancellation_feedback) or CANCELLATION_REASONS.get(
        state.cancellation_reason, state.cancellation_reason
    )
    customer = subscription.customer
    fact_record(
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
    # A customer with another current ModReady subscription has not churned.
    if not selectors.customer_has_other_current_subscription(customer=customer, exclude_stripe_subscription_id=sub_id):
        stages_move_through(customer, [Stage.CHURNED], cause="subscription canceled", occurred_at=ended, key=key)


def subscription_cancel_unscheduled_fact(
    subscription: Subscription, state: SubscriptionState, *, cancel_at_before: datetime | None, occurred_at: datetime
) -> None:
    """A scheduled cancellation was withdrawn; an active subscription's customer is active again."""
    customer: Customer = subscription.customer
    sub_id = state.stripe_subscription_id
    key = f"subscription:{sub_id}:cancel-unscheduled:{timestamp_key(cancel_at_before)}"
    fact_record(
        customer=customer,
        key=key,
        kind="subscription.cancel_unscheduled",
        summary="Scheduled cancellation withdrawn",
        occurred_at=occurred_at,
        object_type="stripe.subscription",
        object_id_=sub_id,
    )
    if state.status == SubscriptionStatus.ACTIVE:
        stages_move_through(customer, [Stage.ACTIVE], cause="cancellation withdrawn", occurred_at=occurred_at, key=key)
