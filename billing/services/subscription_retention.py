"""The retention changes of a subscription, as facts: payments paused (Stripe's `pause_collection` set) and resumed
(cleared), a discount applied, the price changed. Called by subscription_apply_stripe_state with the state before
and the current Stripe state, so a change made from our cancel page, the support page or Stripe's dashboard is
recorded the same way, once (each fact's key names the Stripe state that makes it true).

    subscription:<sub_id>:paused:<resumes_at>        subscription:<sub_id>:resumed:<resumes_at of the pause>
    subscription:<sub_id>:discount:<discount id>     subscription:<sub_id>:price:<from>:<to>

A pause moves the customer to at_risk (they asked to cancel; the pause postpones the decision) and announces
subscription.paused: the provisioning panel suspends the server and keeps its data. The end of the pause (Stripe
clears pause_collection at resumes_at, or someone resumes it earlier) announces subscription.resumed and moves the
customer back to active.
"""

from datetime import datetime

from customers import events
from customers.lifecycle import Stage

from ..models import Subscription, SubscriptionStatus
from ..stripe_objects import SubscriptionState, datetime_to_iso
from .facts import fact_record, timestamp_key


def _ids(state: SubscriptionState) -> dict:
    return {"subscription_id": state.stripe_subscription_id, "product_id": state.product_id}


def subscription_retention_facts(
    subscription: Subscription, state: SubscriptionState, *, before: dict, occurred_at: datetime
) -> list[str]:
    """Record what changed among pause, discount and price; returns the facts recorded (by name)."""
    facts = []
    if state.pause_behavior and (not before["pause_behavior"] or before["pause_resumes_at"] != state.pause_resumes_at):
        _paused_fact(subscription, state, occurred_at=occurred_at)
        facts.append("paused")
    elif before["pause_behavior"] and not state.pause_behavior:
        _resumed_fact(subscription, state, resumes_at_before=before["pause_resumes_at"], occurred_at=occurred_at)
        facts.append("resumed")
    if state.discount_id and state.discount_id != before["discount_id"]:
        _fact(
            subscription,
            state,
            key_tail=f"discount:{state.discount_id}",
            kind="subscription.discount_applied",
            summary="Discount applied to the subscription",
            domain_event=events.SUBSCRIPTION_DISCOUNT_APPLIED,
            payload={"discount": state.discount_id},
            occurred_at=occurred_at,
        )
        facts.append("discount")
    if before["price_id"] and state.price_id and before["price_id"] != state.price_id:
        _plan_changed_fact(subscription, state, before=before, occurred_at=occurred_at)
        facts.append("price")
    return facts


def _fact(
    subscription: Subscription,
    state: SubscriptionState,
    *,
    key_tail: str,
    kind: str,
    summary: str,
    domain_event: str,
    payload: dict,
    occurred_at: datetime,
    to_stage: str | None = None,
) -> None:
    """One retention fact about the subscription, keyed `subscription:<sub_id>:<key_tail>`."""
    fact_record(
        customer=subscription.customer,
        key=f"subscription:{state.stripe_subscription_id}:{key_tail}",
        kind=kind,
        summary=summary,
        occurred_at=occurred_at,
        object_type="stripe.subscription",
        object_id_=state.stripe_subscription_id,
        domain_event=domain_event,
        payload={**_ids(state), **payload},
        to_stage=to_stage,
    )


def _paused_fact(subscription: Subscription, state: SubscriptionState, *, occurred_at: datetime) -> None:
    resumes_at = state.pause_resumes_at
    until = f" until {resumes_at:%Y-%m-%d}" if resumes_at else ""
    _fact(
        subscription,
        state,
        key_tail=f"paused:{timestamp_key(resumes_at)}",
        kind="subscription.paused",
        summary=f"Payments paused{until} (server suspended, data kept)",
        domain_event=events.SUBSCRIPTION_PAUSED,
        payload={"behavior": state.pause_behavior, "resumes_at": datetime_to_iso(resumes_at)},
        occurred_at=occurred_at,
        to_stage=Stage.AT_RISK,
    )


def _resumed_fact(
    subscription: Subscription, state: SubscriptionState, *, resumes_at_before: datetime | None, occurred_at: datetime
) -> None:
    scheduled_to_end = state.cancel_at_period_end or state.cancel_at
    _fact(
        subscription,
        state,
        key_tail=f"resumed:{timestamp_key(resumes_at_before)}",
        kind="subscription.resumed",
        summary="Payments resumed (server running again)",
        domain_event=events.SUBSCRIPTION_RESUMED,
        payload={"paused_until": datetime_to_iso(resumes_at_before)},
        occurred_at=occurred_at,
        to_stage=Stage.ACTIVE if state.status == SubscriptionStatus.ACTIVE and not scheduled_to_end else None,
    )


def _plan_changed_fact(
    subscription: Subscription, state: SubscriptionState, *, before: dict, occurred_at: datetime
) -> None:
    amount = f"{state.amount / 100:.2f} {state.currency.upper()}/{state.interval}"
    _fact(
        subscription,
        state,
        key_tail=f"price:{before['price_id']}:{state.price_id}",
        kind="subscription.plan_changed",
        summary=f"Plan changed to {state.product_name or state.product_id} {amount}",
        domain_event=events.SUBSCRIPTION_PLAN_CHANGED,
        occurred_at=occurred_at,
        payload={
            "from_price_id": before["price_id"],
            "to_price_id": state.price_id,
            "amount": state.amount,
            "currency": state.currency,
            "interval": state.interval,
        },
    )
