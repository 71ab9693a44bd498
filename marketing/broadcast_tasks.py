"""django-q2 entry points of broadcasts: queuing a broadcast's recipients, and the one-minute tick.

`broadcast_enqueue` is safe to run twice, at once, or again after a crash: it queues in chunks, each one
transaction that writes a recipient's enrollment, queue item and `BroadcastRecipient` together, and every chunk
takes only customers who are not recipients yet; the unique (broadcast, customer) and the queue item's unique key
make a second email impossible whatever the timing. `queued_count` is recounted by every chunk.

The drains write chunks too: one with nothing due runs the next chunk itself (`broadcast_queue_feed`, registered
with automations.queue_feeders), so queuing goes on within a second when its task died with its cluster.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import CharField, Value
from django.db.models.functions import MD5, Cast, Concat
from django.utils import timezone

from automations.queue_feeders import Feed
from automations.services.bulk_sends import BulkRecipient, bulk_send_queue, bulk_send_unfinished

from .ab_tests import ab_plan, ab_test_finish
from .broadcast_figures import broadcast_audience, broadcast_audience_count
from .broadcast_guard import broadcast_guard_check
from .broadcast_models import Broadcast, BroadcastRecipient, BroadcastStatus, RecipientPhase
from .broadcasts import SYSTEM, BroadcastRefused, broadcast_audit, broadcast_enqueue_later, broadcast_send_now

logger = logging.getLogger(__name__)

CHUNK_SIZE = 2000
# A queuing broadcast untouched this long lost its worker (each chunk touches it) and no drain ran to go on with it
# (broadcast_queue_feed): the tick starts the task again.
QUEUING_STALE_AFTER = timedelta(minutes=2)
QUEUING_STATUSES = (BroadcastStatus.QUEUING, BroadcastStatus.PAUSED)


def broadcast_enqueue(broadcast_id: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Queue the broadcast's recipients for its current phase (everyone; the A/B test share; the rest with the
    winner). Returns how many were queued by this run."""
    if not _enqueue_plan(broadcast_id):
        return 0
    queued = 0
    while True:
        added = _enqueue_chunk(broadcast_id, chunk_size)
        if added is None:
            return queued  # cancelled (or finished) meanwhile
        queued += added
        if added == 0:
            break
    _enqueue_finish(broadcast_id)
    return queued


class BroadcastBusy(Exception):
    """Another worker holds the broadcast (its queuing task is writing a chunk); raised instead of waiting."""


def _locked(broadcast_id: int, *, no_wait: bool, with_rule: bool = False) -> Broadcast | None:
    """The broadcast, locked for this transaction (None when it is gone). With `no_wait` (a drain feeding itself) one
    that another worker holds raises BroadcastBusy instead of being waited for."""
    found = Broadcast.objects.select_for_update(of=("self",), skip_locked=no_wait)
    found = found.select_related("rule") if with_rule else found
    broadcast = found.filter(pk=broadcast_id).first()
    if broadcast is None and no_wait and Broadcast.objects.filter(pk=broadcast_id).exists():
        raise BroadcastBusy(broadcast_id)
    return broadcast


@transaction.atomic
def _enqueue_plan(broadcast_id: int, *, no_wait: bool = False) -> bool:
    """On the first run: the audience at start, and whether there is an A/B test (ab_tests.ab_plan)."""
    broadcast = _locked(broadcast_id, no_wait=no_wait)
    if broadcast is None or broadcast.status not in QUEUING_STATUSES:
        return False
    if broadcast.audience_at_start is None:
        now = timezone.now()
        audience = broadcast_audience_count(broadcast=broadcast, at=now)
        plan = ab_plan(
            audience=audience, variants=broadcast.variants.count(), share_percent=broadcast.test_share_percent
        )
        broadcast.audience_at_start, broadcast.ab_note = audience, plan.note[:500]
        broadcast.test_ends_at = now + broadcast.test_wait if plan.test else None
        broadcast.save(update_fields=["audience_at_start", "ab_note", "test_ends_at", "updated_at"])
    return True


def _phase(broadcast: Broadcast) -> str:
    if broadcast.winner_id is not None:
        return RecipientPhase.WINNER
    return RecipientPhase.TEST if broadcast.test_ends_at is not None else RecipientPhase.ALL


def _candidates(broadcast: Broadcast, *, phase: str, chunk_size: int, now) -> list[tuple[int, str]]:
    """The next customers to queue: in the audience now and not recipients yet. For the A/B test share, in an order
    fixed per broadcast (a hash of its id and theirs), up to the planned test size."""
    existing = BroadcastRecipient.objects.filter(broadcast=broadcast).values("customer_id")
    audience = broadcast_audience(broadcast=broadcast, at=now).exclude(pk__in=existing)
    if phase != RecipientPhase.TEST:
        return list(audience.order_by("pk").values_list("pk", "email")[:chunk_size])
    variants = broadcast.variants.count()
    per_arm = ab_plan(
        audience=broadcast.audience_at_start or 0, variants=variants, share_percent=broadcast.test_share_percent
    ).per_arm
    room = per_arm * variants - BroadcastRecipient.objects.filter(broadcast=broadcast).count()
    if room <= 0:
        return []
    order = MD5(Concat(Value(f"{broadcast.pk}:"), Cast("pk", CharField())))
    return list(
        audience.annotate(ab_order=order).order_by("ab_order").values_list("pk", "email")[: min(room, chunk_size)]
    )


@transaction.atomic
def _enqueue_chunk(broadcast_id: int, chunk_size: int, *, no_wait: bool = False) -> int | None:
    """Queue up to `chunk_size` recipients in one transaction. Returns how many recipients were added (0: none
    left), or None when the broadcast is no longer queuing. With `no_wait` (a drain feeding itself) a broadcast whose
    chunk another worker is writing raises BroadcastBusy instead of being waited for."""
    broadcast = _locked(broadcast_id, no_wait=no_wait, with_rule=True)
    if broadcast is None or broadcast.status not in QUEUING_STATUSES or broadcast.rule is None:
        return None
    now = timezone.now()
    phase = _phase(broadcast)
    candidates = _candidates(broadcast, phase=phase, chunk_size=chunk_size, now=now)
    if not candidates:
        return 0
    variants = list(broadcast.variants.order_by("label"))
    steps = dict(broadcast.rule.steps.values_list("order", "pk"))
    if phase == RecipientPhase.TEST:
        start = BroadcastRecipient.objects.filter(broadcast=broadcast).count()
        chosen = [variants[(start + i) % len(variants)] for i in range(len(candidates))]
    else:
        winner = next((v for v in variants if v.pk == broadcast.winner_id), variants[0])
        chosen = [winner] * len(candidates)
    step_of = {variant.pk: steps[index] for index, variant in enumerate(variants, start=1)}
    override = ""
    if broadcast.ignore_frequency_cap:
        override = f"Broadcast {broadcast.name}: {broadcast.frequency_cap_override_reason}"
    items = bulk_send_queue(
        rule=broadcast.rule,
        scope_key=f"broadcast:{broadcast.pk}",
        key_prefix=f"broadcast-{broadcast.pk}",
        recipients=[
            BulkRecipient(customer_id, email, step_of[variant.pk])
            for (customer_id, email), variant in zip(candidates, chosen, strict=True)
        ],
        now=now,
        cap_override=override,
    )
    added = BroadcastRecipient.objects.bulk_create(
        [
            BroadcastRecipient(
                broadcast=broadcast,
                customer_id=customer_id,
                variant=variant,
                phase=phase,
                queue_item_id=items[customer_id],
            )
            for (customer_id, _), variant in zip(candidates, chosen, strict=True)
            if customer_id in items
        ],
        ignore_conflicts=True,
    )
    broadcast.queued_count = BroadcastRecipient.objects.filter(broadcast=broadcast).count()
    broadcast.save(update_fields=["queued_count", "updated_at"])
    return len(added)


@transaction.atomic
def _enqueue_finish(broadcast_id: int) -> None:
    broadcast = Broadcast.objects.select_for_update().get(pk=broadcast_id)
    if broadcast.status != BroadcastStatus.QUEUING:
        return  # paused meanwhile: the resume finishes it
    testing = _phase(broadcast) == RecipientPhase.TEST
    broadcast.status = BroadcastStatus.TESTING if testing else BroadcastStatus.SENDING
    broadcast.save(update_fields=["status", "updated_at"])
    detail = f"{broadcast.queued_count} recipient(s) queued" + (" (A/B test share)" if testing else "")
    broadcast_audit(broadcast=broadcast, actor=None, action="queued", detail=detail, actor_name=SYSTEM)


def broadcast_queue_feed() -> Feed:
    """The drains' feeder (automations.queue_feeders): a drain with nothing due writes the next chunk of a queuing
    broadcast itself, so a queuing task killed with its cluster costs no more than the queue running dry for a
    second. While the broadcast's own task is writing a chunk, the drain waits for it instead (busy)."""
    feed = Feed()
    queuing = Broadcast.objects.filter(status=BroadcastStatus.QUEUING).order_by("pk")
    for broadcast_id, audience in queuing.values_list("pk", "audience_at_start")[:10]:
        try:
            planned = audience is not None or _enqueue_plan(broadcast_id, no_wait=True)
            added = _enqueue_chunk(broadcast_id, CHUNK_SIZE, no_wait=True) if planned else None
        except BroadcastBusy:
            feed.busy = True
            continue
        if added == 0:
            _enqueue_finish(broadcast_id)
        elif added:
            feed.queued += added
            return feed
    return feed


def broadcasts_tick() -> dict:
    """Every minute: start due scheduled broadcasts, end A/B tests whose wait has passed, run the deliverability
    guard, restart a queuing whose worker died, and mark broadcasts with nothing left to send as sent."""
    now = timezone.now()
    done = {"started": 0, "tests_ended": 0, "guard_paused": 0, "requeued": 0, "finished": 0}
    for broadcast in Broadcast.objects.filter(status=BroadcastStatus.SCHEDULED, scheduled_at__lte=now):
        try:
            broadcast_send_now(broadcast=broadcast, actor=None, actor_name=SYSTEM)
            done["started"] += 1
        except BroadcastRefused as exc:
            logger.info("Broadcast %s not started: %s", broadcast.pk, exc)
    for broadcast in Broadcast.objects.filter(status=BroadcastStatus.TESTING, test_ends_at__lte=now):
        done["tests_ended"] += ab_test_finish(broadcast=broadcast) is not None
    for broadcast in Broadcast.objects.filter(status__in=[BroadcastStatus.SENDING, BroadcastStatus.TESTING]):
        done["guard_paused"] += broadcast_guard_check(broadcast=broadcast) is not None
    stale = Broadcast.objects.filter(status=BroadcastStatus.QUEUING, updated_at__lt=now - QUEUING_STALE_AFTER)
    for broadcast_id in stale.values_list("pk", flat=True):
        broadcast_enqueue_later(broadcast_id)
        done["requeued"] += 1
    for broadcast in Broadcast.objects.filter(status=BroadcastStatus.SENDING):
        done["finished"] += broadcast_finish_if_done(broadcast_id=broadcast.pk)
    return done


@transaction.atomic
def broadcast_finish_if_done(*, broadcast_id: int) -> bool:
    """A sending broadcast with no email waiting or being sent any more is sent."""
    broadcast = Broadcast.objects.select_for_update().get(pk=broadcast_id)
    if broadcast.status != BroadcastStatus.SENDING or bulk_send_unfinished(rule_id=broadcast.rule_id):
        return False
    broadcast.status, broadcast.finished_at = BroadcastStatus.SENT, timezone.now()
    broadcast.save(update_fields=["status", "finished_at", "updated_at"])
    broadcast_audit(
        broadcast=broadcast,
        actor=None,
        action="sent",
        detail=f"{broadcast.queued_count} recipient(s)",
        actor_name=SYSTEM,
    )
    return True
