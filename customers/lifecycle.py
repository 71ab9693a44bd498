"""The customer journey as a state machine: the stages and the only moves allowed between them.

This is the one place transitions are defined. `customers.services.customer_move_stage` refuses anything else, and
records every move it makes (`StageTransition`) so the admin can show a customer's path and a funnel.
"""

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
    Stage.TRIAL: frozenset({Stage.PURCHASE, Stage.CHURNED}),
    Stage.PURCHASE: frozenset({Stage.ONBOARDING, Stage.ACTIVE, Stage.AT_RISK, Stage.CHURNED}),
    Stage.ONBOARDING: frozenset({Stage.ACTIVE, Stage.AT_RISK, Stage.CHURNED}),
    Stage.ACTIVE: frozenset({Stage.AT_RISK, Stage.CHURNED}),
    Stage.AT_RISK: frozenset({Stage.ACTIVE, Stage.CHURNED}),
    Stage.CHURNED: frozenset({Stage.WIN_BACK, Stage.PURCHASE, Stage.TRIAL}),
    Stage.WIN_BACK: frozenset({Stage.PURCHASE, Stage.TRIAL, Stage.CHURNED}),
}

# The order stages are shown in a funnel.
FUNNEL_ORDER: list[str] = [stage.value for stage in Stage]


def can_transition(from_stage: str, to_stage: str) -> bool:
    return to_stage in ALLOWED_TRANSITIONS.get(from_stage, frozenset())
