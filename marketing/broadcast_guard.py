"""The deliverability guard: a broadcast whose emails bounce or draw complaints too often is paused before it hurts
the sending domain's reputation.

Over the broadcast's most recent GUARD_WINDOW sent emails (since staff last resumed it: a resume acknowledges the
figures so far), it is paused when
- permanent bounces / sent > 4%, once at least 100 were sent; or
- complaints / delivered > 0.08%, once at least 1,250 were delivered.
The pause is the broadcast's ordinary pause, by "system", with the figures in `guard_note` (the admin's banner) and
the audit. Below the minimums a few early bounces prove nothing, and nothing is paused.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count, DateTimeField, Q, Subquery, Value
from django.db.models.functions import Coalesce

from automations.models import EmailQueueItem

from .broadcast_models import Broadcast, BroadcastAuditEntry, BroadcastStatus
from .broadcasts import SYSTEM, BroadcastRefused, broadcast_pause

GUARD_WINDOW = 2000
BOUNCE_LIMIT = 0.04
BOUNCE_MIN_SENT = 100
COMPLAINT_LIMIT = 0.0008
COMPLAINT_MIN_DELIVERED = 1250
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GuardFigures:
    sent: int
    bounced: int
    delivered: int
    complained: int


def guard_figures(*, broadcast: Broadcast) -> GuardFigures:
    """The counts over the broadcast's most recent GUARD_WINDOW sent emails (after its last resume): one query."""
    recent = EmailQueueItem.objects.filter(step__rule_id=broadcast.rule_id, sent_at__isnull=False)
    resumed = (
        BroadcastAuditEntry.objects.filter(broadcast=broadcast, action="resumed")
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    since = Coalesce(Subquery(resumed), Value(EPOCH), output_field=DateTimeField())
    recent = recent.filter(sent_at__gt=since)
    window = recent.order_by("-sent_at", "-id").values("pk")[:GUARD_WINDOW]
    counts = EmailQueueItem.objects.filter(pk__in=window).aggregate(
        sent=Count("pk"),
        bounced=Count("pk", filter=Q(bounced_at__isnull=False)),
        delivered=Count("pk", filter=Q(delivered_at__isnull=False)),
        complained=Count("pk", filter=Q(complained_at__isnull=False)),
    )
    return GuardFigures(**counts)


def guard_reason(figures: GuardFigures) -> str | None:
    """Why the guard pauses at these figures, with the numbers; None when it does not."""
    reasons = []
    if figures.sent >= BOUNCE_MIN_SENT and figures.bounced > BOUNCE_LIMIT * figures.sent:
        rate = figures.bounced / figures.sent * 100
        reasons.append(
            f"hard bounces {figures.bounced} of {figures.sent} sent ({rate:.1f}%, limit {BOUNCE_LIMIT * 100:.0f}%)"
        )
    if figures.delivered >= COMPLAINT_MIN_DELIVERED and figures.complained > COMPLAINT_LIMIT * figures.delivered:
        rate = figures.complained / figures.delivered * 100
        reasons.append(
            f"complaints {figures.complained} of {figures.delivered} delivered ({rate:.2f}%, "
            f"limit {COMPLAINT_LIMIT * 100:.2f}%)"
        )
    if not reasons:
        return None
    return f"Paused by the deliverability guard: {' and '.join(reasons)}, over the last {figures.sent} emails sent."


def broadcast_guard_check(*, broadcast: Broadcast) -> str | None:
    """Pause the broadcast when its recent figures cross a limit. Returns the guard's note when it paused it."""
    if broadcast.status not in (BroadcastStatus.SENDING, BroadcastStatus.TESTING) or broadcast.rule_id is None:
        return None
    note = guard_reason(guard_figures(broadcast=broadcast))
    if note is None:
        return None
    try:
        broadcast_pause(
            broadcast=broadcast, actor=None, actor_name=SYSTEM, reason="deliverability guard", guard_note=note
        )
    except BroadcastRefused:
        return None  # paused or cancelled by staff meanwhile
    return note
