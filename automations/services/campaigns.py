"""Campaigns: the stage moves of re-engagement rules (customers/lifecycle.py, "Churned -> Win-back -> Churned")."""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from customers.lifecycle import CAMPAIGN_STAGES, Stage, campaign_ended_key, campaign_reached_key
from customers.models import Customer, TimelineSource
from customers.services import customer_move_stage, timeline_event_record

from ..models import (
    EmailQueueItem,
    Enrollment,
    EnrollmentStatus,
)

logger = logging.getLogger(__name__)


def campaign_stage_on_sent(*, items: list[EmailQueueItem], sent_at: datetime) -> int:
    """Emails just went out (in the transaction that records the send): each campaign enrollment that reached its
    customer moves them from Churned to the rule's stage, once per enrollment. `items` have `step.rule` loaded.
    Returns how many customers moved."""
    campaign = [item for item in items if item.step.rule.moves_to_stage]
    if not campaign:
        return 0
    # Locked: a concurrent exit has either committed (the campaign is over: nobody moves) or waits for this one.
    running = set(
        Enrollment.objects.select_for_update(of=("self",))
        .filter(pk__in={item.enrollment_id for item in campaign}, status=EnrollmentStatus.ACTIVE)
        .values_list("pk", flat=True)
    )
    moved = 0
    for item in sorted(campaign, key=lambda item: (item.customer_id, item.enrollment_id)):  # one lock order
        stage = item.step.rule.moves_to_stage
        if item.enrollment_id not in running:
            continue
        transition = customer_move_stage(
            customer=item.customer,
            to_stage=stage,
            from_stage=CAMPAIGN_STAGES[stage],
            cause=f"first {item.step.rule.name} email sent: {item.step.template.name}",
            occurred_at=sent_at,
            source_key=campaign_reached_key(enrollment_id=item.enrollment_id),
        )
        moved += transition is not None
    return moved


def campaign_stage_on_end(*, enrollment: Enrollment, how: str) -> bool:
    """A campaign enrollment ended (`how`: "completed" or "exited: <reason>") without a comeback: its customer, if
    still in the rule's stage with no other campaign running, moves back to where campaigns start. Returns whether
    they moved."""
    stage = enrollment.rule.moves_to_stage
    return bool(stage) and _campaign_stage_leave(enrollment=enrollment, stage=stage, how=how)


def campaign_stage_on_purchase(*, enrollment: Enrollment, reason: str) -> bool:
    """A campaign ended because the customer bought something (a checkout). A new subscription moves them on through
    billing as usual, but a purchase without one (a VIP reservation) would leave them in the campaign's stage with no
    campaign: a customer still there moves to Purchase. Returns whether they moved."""
    stage = enrollment.rule.moves_to_stage
    if not stage:
        return False
    transition = customer_move_stage(
        customer=enrollment.customer,
        to_stage=Stage.PURCHASE,
        from_stage=stage,
        cause=f"came back during {enrollment.rule.name}: {reason}",
        occurred_at=enrollment.exited_at,
        source_key=f"campaign:enrollment-{enrollment.pk}:purchase",
    )
    return transition is not None


@transaction.atomic
def _campaign_stage_leave(*, enrollment: Enrollment, stage: str, how: str) -> bool:
    # The customer's row first: two campaigns of one customer ending at once see each other's end in turn.
    customer = Customer.objects.select_for_update().get(pk=enrollment.customer_id)
    if customer.lifecycle_stage != stage:
        return False
    others = Enrollment.objects.filter(
        customer=customer, status=EnrollmentStatus.ACTIVE, rule__moves_to_stage=stage
    ).exclude(pk=enrollment.pk)
    if others.exists():
        return False
    ended_at = enrollment.completed_at or enrollment.exited_at or timezone.now()
    key = campaign_ended_key(enrollment_id=enrollment.pk)
    transition = customer_move_stage(
        customer=customer,
        to_stage=CAMPAIGN_STAGES[stage],
        from_stage=stage,
        cause=f"{enrollment.rule.name} ended without a return ({how})",
        occurred_at=ended_at,
        source_key=key,
    )
    if transition is None:
        return False
    # The fact behind this move is the campaign's end, which nothing else puts on the timeline.
    timeline_event_record(
        customer=customer,
        source=TimelineSource.EMAIL,
        source_key=key,
        kind="lifecycle.campaign_ended",
        occurred_at=ended_at,
        summary=f"{enrollment.rule.name} ended ({how}) without a new subscription: back to "
        f"{transition.get_to_stage_display()}",
        payload={"enrollment_id": enrollment.pk, "rule_id": enrollment.rule_id},
        object_type="automations.enrollment",
        object_id=str(enrollment.pk),
    )
    return True
