"""The customer journey as a state machine: the stages and the only moves allowed between them.

This is the one place transitions are defined. `customers.services.customer_move_stage` refuses anything else, and
records every move it makes (`StageTransition`) so the admin can show a customer's path and a funnel.
"""

from datetime import datetime, timedelta

from django.db import models


class Stage(models.TextChoices):
    DISCOVERY = "discovery", "Discovery"
    TRIAL = "trial", "Trial"
    PURCHASE = "purchase", "Purchase"
    ONBOARDING = "onboarding", "Onboarding"
    ACTIVE = "active", "Active"
    AT_RISK = "at_risk", "At risk"
    CHURNED = "churned", "Churned"
    WIN_BACK = "win_back", "Win-back"


# From the seed's journey: discovery -> trial -> purchase -> onboarding -> active, with at_risk (failed payment or a
# scheduled cancellation), churned (subscription ended) and win_back (re-engagement) around it. A customer can buy
# without a trial, fall at risk or churn at any paying stage, and come back by buying again.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Stage.DISCOVERY: frozenset({Stage.TRIAL, Stage.PURCHASE}),
    # A trial that ended without a payment method (Stripe pauses it) is at risk; paying then is the purchase.
    Stage.TRIAL: frozenset({Stage.PURCHASE, Stage.AT_RISK, Stage.CHURNED}),
    Stage.PURCHASE: frozenset({Stage.ONBOARDING, Stage.ACTIVE, Stage.AT_RISK, Stage.CHURNED}),
    Stage.ONBOARDING: frozenset({Stage.ACTIVE, Stage.AT_RISK, Stage.CHURNED}),
    Stage.ACTIVE: frozenset({Stage.AT_RISK, Stage.CHURNED}),
    Stage.AT_RISK: frozenset({Stage.ACTIVE, Stage.PURCHASE, Stage.CHURNED}),
    Stage.CHURNED: frozenset({Stage.WIN_BACK, Stage.PURCHASE, Stage.TRIAL}),
    Stage.WIN_BACK: frozenset({Stage.PURCHASE, Stage.TRIAL, Stage.CHURNED}),
}

# The order stages are shown in a funnel.
FUNNEL_ORDER: list[str] = [stage.value for stage in Stage]


def can_transition(from_stage: str, to_stage: str) -> bool:
    return to_stage in ALLOWED_TRANSITIONS.get(from_stage, frozenset())


# --- Onboarding -> Active ----------------------------------------------------------------------------------------
# A new subscriber is in Onboarding until they have settled in, which we take to be whichever comes first:
#
# 1. Their first renewal is paid: an invoice paid with billing_reason `subscription_cycle`
#    (https://docs.stripe.com/api/invoices/object#invoice_object-billing_reason) at least RENEWAL_AFTER_ONBOARDING
#    after they entered Onboarding. Paying again for a second period is the clearest sign that the server is in
#    use. The minimum skips the charge that ends a trial: Stripe bills it as `subscription_cycle` too, but it is
#    the first payment, made at the moment the customer entered Onboarding. Applied by billing when the invoice is
#    paid (billing.services.invoices.invoice_apply_stripe_state).
# 2. ONBOARDING_SETTLE_AFTER in Onboarding: a yearly plan renews only after a year, and a customer who has kept a
#    subscription for a month without a failed payment or a cancellation (either would have moved them to at_risk
#    or churned) has settled in. Applied by the daily `customers.onboarding-settle` schedule.
#
# Not chosen: "the onboarding emails have all gone out". The Welcome sequence ends after a day, which says what we
# did, not what the customer did. Only a customer still in Onboarding moves (checked under the row lock): one at
# risk or churned leaves those stages by their own events (a recovered payment, a new subscription).
RENEWAL_BILLING_REASON = "subscription_cycle"
RENEWAL_AFTER_ONBOARDING = timedelta(days=7)
ONBOARDING_SETTLE_AFTER = timedelta(days=30)


def renewal_ends_onboarding(*, stage: str, onboarding_since: datetime, billing_reason: str, paid_at: datetime) -> bool:
    """Path 1: this paid invoice is the customer's first renewal since they entered Onboarding."""
    return (
        stage == Stage.ONBOARDING
        and billing_reason == RENEWAL_BILLING_REASON
        and paid_at - onboarding_since >= RENEWAL_AFTER_ONBOARDING
    )


def onboarding_settled_at(*, onboarding_since: datetime) -> datetime:
    """Path 2: when a customer who entered Onboarding at `onboarding_since` has settled in, if still there."""
    return onboarding_since + ONBOARDING_SETTLE_AFTER


# --- Churned -> Win-back -> Churned ------------------------------------------------------------------------------
# Win-back is the stage of a churned customer whom a re-engagement campaign is reaching (the seed: "Win-back:
# re-engagement email campaigns to churned customers", "subscription.deleted -> win-back flow"). A campaign is an
# automation rule whose "moves customers to stage" says Win-back (AutomationRule.moves_to_stage; the default
# "Win-back" rule, triggered by subscription.canceled, is one), so marketing sees and decides which rules count.
#
# 1. Churned -> Win-back when the first email of an enrollment in such a rule is sent (accepted by the provider, not
#    merely queued): applied by automations where it records the send (automations.batch_outcome.batch_record_sent).
# 2. Win-back -> Churned when that enrollment ends, completed (its last email went out or was skipped) or exited,
#    without the customer having come back, and no other campaign enrollment of theirs is still running: applied by
#    automations where the enrollment ends (automations.services.campaigns.campaign_stage_on_end). The cause says
#    so, and the dashboard does not count this move as a new churn (only moves into churned from another stage are
#    churn).
# 3. Win-back -> Trial / Purchase when they subscribe again: billing moves them as for any new subscription (the
#    trials sync for a website trial), and the rule's exit events (subscription.created, checkout.completed,
#    trial.started) end the campaign. An exit caused by one of COMEBACK_EVENTS moves nobody back to Churned. An exit
#    by checkout.completed moves a customer still in Win-back to Purchase (campaign_stage_on_purchase): they bought,
#    and a purchase without a subscription (a VIP reservation) would otherwise leave them in Win-back with no
#    campaign; a subscription that follows moves them on to Onboarding as usual.
#
# Not chosen: the rule's name (marketing renames rules); "every rule triggered by subscription.canceled" (a
# transactional "your backups are deleted in 14 days" email is not a re-engagement campaign); the enrollment itself
# (the first email waits three days, goes only to customers with marketing consent, and is cancelled for one who
# comes back first: an enrollment that sends nothing reaches nobody). Each move applies only to a customer in the
# expected stage at that moment (customer_move_stage(from_stage=...), under the row lock) and carries a key from the
# enrollment's id, so a duplicate send or a second completion never moves anyone twice.
CAMPAIGN_STAGES: dict[str, str] = {Stage.WIN_BACK: Stage.CHURNED}  # the stage a campaign moves to: from which stage
COMEBACK_EVENTS = frozenset({"subscription.created", "checkout.completed", "trial.started"})


def campaign_reached_key(*, enrollment_id: int) -> str:
    return f"campaign:enrollment-{enrollment_id}:reached"


def campaign_ended_key(*, enrollment_id: int) -> str:
    return f"campaign:enrollment-{enrollment_id}:ended"
