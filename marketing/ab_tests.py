"""A/B tests of a broadcast: two to four variants (subjects, or whole templates).

The test share of the audience (`test_share_percent`) is split evenly between the variants; each arm needs at least
MIN_PER_ARM recipients, else there is no test and everyone gets variant A (`ab_note` says why, with the numbers).
After `test_wait`, the variant with the most unique clicks per delivered email wins (a tie goes to the lowest
label) and the rest of the audience, recomputed then and without anyone already sent to, gets the winner. Opens do
not count: Apple Mail Privacy Protection and image proxies open emails by themselves.
"""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from .broadcast_models import Broadcast, BroadcastStatus, BroadcastVariant, RecipientPhase
from .broadcasts import SYSTEM, broadcast_audit, broadcast_enqueue_later

MIN_PER_ARM = 500


@dataclass(frozen=True)
class AbPlan:
    test: bool
    per_arm: int = 0
    note: str = ""


def ab_plan(*, audience: int, variants: int, share_percent: int) -> AbPlan:
    """Whether a broadcast of `variants` variants to `audience` customers runs a test, and its size per arm."""
    if variants < 2:
        return AbPlan(test=False)
    per_arm = audience * share_percent // 100 // variants
    if per_arm < MIN_PER_ARM:
        note = (
            f"No A/B test: {share_percent}% of {audience} recipients split {variants} ways is {per_arm} per "
            f"variant, and a test needs at least {MIN_PER_ARM} per variant. Everyone gets variant A."
        )
        return AbPlan(test=False, per_arm=per_arm, note=note)
    note = (
        f"A/B test: {per_arm} recipients per variant ({share_percent}% of {audience}); the rest get the variant "
        "with the most clicks per delivered email."
    )
    return AbPlan(test=True, per_arm=per_arm, note=note)


@dataclass(frozen=True)
class ArmResult:
    variant: BroadcastVariant
    delivered: int
    clicked: int

    @property
    def rate(self) -> float:
        return self.clicked / self.delivered if self.delivered else 0.0


def ab_results(*, broadcast: Broadcast) -> list[ArmResult]:
    """Each variant's test-share figures, by label: one query."""
    variants = (
        BroadcastVariant.objects.filter(broadcast=broadcast)
        .annotate(
            delivered=Count(
                "recipients",
                filter=Q(recipients__phase=RecipientPhase.TEST, recipients__queue_item__delivered_at__isnull=False),
            ),
            clicked=Count(
                "recipients",
                filter=Q(recipients__phase=RecipientPhase.TEST, recipients__queue_item__clicked_at__isnull=False),
            ),
        )
        .order_by("label")
    )
    return [ArmResult(variant, variant.delivered, variant.clicked) for variant in variants]


def ab_winner(results: list[ArmResult]) -> ArmResult:
    """Most unique clicks per delivered email; a tie goes to the lowest label (results come in label order)."""
    best = results[0]
    for result in results[1:]:
        if result.rate > best.rate:
            best = result
    return best


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"


@transaction.atomic
def ab_test_finish(*, broadcast: Broadcast) -> BroadcastVariant | None:
    """The test's wait has passed: choose the winner, note it with the figures, and queue the rest with it. None
    when the broadcast is not (any more) testing or its wait has not passed."""
    broadcast = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
    now = timezone.now()
    if broadcast.status != BroadcastStatus.TESTING or broadcast.test_ends_at is None or broadcast.test_ends_at > now:
        return None
    results = ab_results(broadcast=broadcast)
    winner = ab_winner(results)
    figures = ", ".join(f"{r.variant.label}: {r.clicked} of {r.delivered} ({_percent(r.rate)})" for r in results)
    broadcast.winner = winner.variant
    broadcast.ab_note = f"Variant {winner.variant.label} won on clicks per delivered email ({figures})."[:500]
    broadcast.status = BroadcastStatus.QUEUING
    broadcast.save(update_fields=["winner", "ab_note", "status", "updated_at"])
    broadcast_audit(broadcast=broadcast, actor=None, action="A/B winner", detail=broadcast.ab_note, actor_name=SYSTEM)
    broadcast_enqueue_later(broadcast.pk)
    return winner.variant
