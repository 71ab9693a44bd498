"""The send-time gate of marketing email: the customer's topics, the frequency cap and quiet hours.

The queue calls `send_gate_pass` once per claimed batch (automations/batch_claim.py, `batch_claim_new`), inside the
claim's transaction, before anything is rendered. For a batch of queue items it decides, with a constant number of
queries whatever the batch size (asserted in tests/automations/test_send_gates.py):

- which may go now (every transactional email, and marketing email that passes);
- which are deferred, to when and why (the cap or quiet hours hold it and its rule says "defer"): the item stays
  pending with `next_attempt_at` moved to the next allowed moment and the reason in `send_gate_note`;
- which are skipped, and why: the customer turned the email's topic off (blocked, like a missing consent), or the cap
  or quiet hours hold it and its rule says "skip" (cancelled, with the reason).

Consent (`opt_in_confirmed`) and suppressions stay where they were (`automations.email_state.block_reason`, applied
by the claim right after this gate): an email refused there is passed through here untouched. The same rules in SQL,
for counting an audience, are `automations.marketing_audience.marketing_recipients`; tests prove the two agree.

Two claims running at once for the same customer could each see room under the cap: the gate takes a transaction
advisory lock per customer (in one statement, in id order), so the second waits for the first's commit and counts
its emails (they are `sending` by then).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import Case, CharField, DateTimeField, F, Q, TextField, Value, When

from customers.models import TopicSubscription
from customers.time_zones import zone_info

from .models import (
    AutomationRule,
    EmailQueueItem,
    EnrollmentStatus,
    QueueStatus,
    TemplateCategory,
    WhenHeld,
)

# pg_advisory_xact_lock(namespace, key): apart from the project's other advisory locks ("FC": frequency cap).
CAP_LOCK_NAMESPACE = 0x4643


@dataclass(frozen=True)
class Held:
    """An email the gate did not let go now: deferred to `until`, or skipped with `status`."""

    item: EmailQueueItem
    reason: str
    until: datetime | None = None
    status: str = ""


@dataclass
class GateVerdict:
    send: list[EmailQueueItem] = field(default_factory=list)
    deferred: list[Held] = field(default_factory=list)
    skipped: list[Held] = field(default_factory=list)
    # Notes on emails that go now (one let past the cap by its override): the audit of that choice.
    notes: dict[int, str] = field(default_factory=dict)


def cap_period() -> timedelta:
    return timedelta(hours=settings.MARKETING_FREQUENCY_CAP_HOURS)


def marketing_sends_q(*, since: datetime, prefix: str = "") -> Q:
    """The queue items that count toward the frequency cap: marketing emails sent after `since`, being sent now, or
    perhaps sent (outcome unknown) after it. `prefix` reaches the queue item from another model."""
    return Q(**{f"{prefix}step__template__category": TemplateCategory.MARKETING}) & (
        Q(**{f"{prefix}sent_at__gt": since})
        | Q(**{f"{prefix}status": QueueStatus.SENDING})
        | Q(**{f"{prefix}status": QueueStatus.UNCONFIRMED, f"{prefix}updated_at__gt": since})
    )


def quiet_hours() -> tuple[int, int] | None:
    start, end = settings.MARKETING_QUIET_HOURS_START, settings.MARKETING_QUIET_HOURS_END
    return None if start == end else (start, end)


def quiet_until(moment: datetime, zone: ZoneInfo) -> datetime | None:
    """The end of the quiet hours `moment` falls in, in the customer's zone; None when it is not quiet then."""
    hours = quiet_hours()
    if hours is None:
        return None
    start, end = hours
    local = moment.astimezone(zone)
    now = local.time()
    quiet = (time(start) <= now < time(end)) if start < end else (now >= time(start) or now < time(end))
    if not quiet:
        return None
    day = local.date() if now < time(end) else local.date() + timedelta(days=1)
    return datetime.combine(day, time(end), tzinfo=zone).astimezone(moment.tzinfo)


def cap_free_at(sends: list[datetime], *, now: datetime) -> datetime | None:
    """When the customer is under the cap again, given their counted sends; None when they are under it now."""
    cap = settings.MARKETING_FREQUENCY_CAP
    recent = sorted((moment for moment in sends if moment > now - cap_period()), reverse=True)
    if not cap or len(recent) < cap:
        return None
    return recent[cap - 1] + cap_period()


def _lock_customers(customer_ids: set[int]) -> None:
    if connection.vendor != "postgresql":
        return  # the local run's SQLite takes its one write lock at BEGIN (config/settings/base.py): no overlap
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, k) FROM "
            "(SELECT DISTINCT (unnest(%s::bigint[]) %% 2147483647)::integer AS k ORDER BY 1) AS keys",
            [CAP_LOCK_NAMESPACE, sorted(customer_ids)],
        )


def _recent_sends(customer_ids: set[int], *, now: datetime) -> dict[int, list[datetime]]:
    """Each customer's counted sends (marketing_sends_q) and when: sent_at; now for one being sent (it counts from
    its send, not from its claim); the last change for one whose outcome is unknown."""
    rows = (
        EmailQueueItem.objects.filter(customer_id__in=customer_ids)
        .filter(marketing_sends_q(since=now - cap_period()))
        .values_list("customer_id", "sent_at", "status", "updated_at")
    )
    sends: dict[int, list[datetime]] = defaultdict(list)
    for customer_id, sent_at, status, updated_at in rows:
        moment = sent_at or (now if status == QueueStatus.SENDING else updated_at)
        sends[customer_id].append(min(moment, now))
    return sends


def _gated(item: EmailQueueItem) -> bool:
    """Marketing email that the claim will not refuse for itself (ended enrollment, no consent)."""
    return (
        item.step.template.category == TemplateCategory.MARKETING
        and item.enrollment.status == EnrollmentStatus.ACTIVE
        and item.customer.opt_in_confirmed
    )


def send_gate_check(items: list[EmailQueueItem], *, now: datetime) -> GateVerdict:
    """Decide for a batch (items with `customer`, `step__template` and `enrollment` loaded, in send order); writes
    nothing but takes the customers' cap locks. At most four queries, whatever the batch size."""
    verdict = GateVerdict()
    gated = [item for item in items if _gated(item)]
    if not gated:
        verdict.send = list(items)
        return verdict
    rules = AutomationRule.objects.select_related("topic").in_bulk({item.step.rule_id for item in gated})
    customer_ids = {item.customer_id for item in gated}
    topic_ids = {rule.topic_id for rule in rules.values() if rule.topic_id}
    chosen = {
        (customer_id, topic_id): subscribed
        for customer_id, topic_id, subscribed in TopicSubscription.objects.filter(
            customer_id__in=customer_ids, topic_id__in=topic_ids
        ).values_list("customer_id", "topic_id", "subscribed")
    }
    sends: dict[int, list[datetime]] = defaultdict(list)
    if settings.MARKETING_FREQUENCY_CAP:
        _lock_customers(customer_ids)
        sends = _recent_sends(customer_ids, now=now)
    for item in items:
        if not _gated(item):
            verdict.send.append(item)
            continue
        rule = rules[item.step.rule_id]
        topic = rule.topic
        if topic is not None and not chosen.get((item.customer_id, topic.pk), topic.subscribed_by_default):
            reason = f"Blocked: the customer turned off the topic \u201c{topic.name}\u201d"
            verdict.skipped.append(Held(item, reason, status=QueueStatus.SUPPRESSED))
            continue
        held = _held_by_time(item, rule, sends[item.customer_id], now=now)
        if held is not None:
            (verdict.skipped if held.status else verdict.deferred).append(held)
            continue
        if item.frequency_cap_override and cap_free_at(sends[item.customer_id], now=now):
            verdict.notes[item.pk] = f"Sent past the frequency cap: {item.frequency_cap_override}"[:500]
        sends[item.customer_id].append(now)  # the next email of this customer in the batch counts this one
        verdict.send.append(item)
    return verdict


def _held_by_time(item: EmailQueueItem, rule: AutomationRule, sends: list[datetime], *, now: datetime) -> Held | None:
    """The cap or quiet hours holding `item` now: deferred to the next allowed moment, or skipped per its rule."""
    zone = zone_info(item.customer.time_zone)
    reasons = []
    until = now
    capped_until = None if item.frequency_cap_override else cap_free_at(sends, now=now)
    if capped_until is not None:
        cap, hours = settings.MARKETING_FREQUENCY_CAP, settings.MARKETING_FREQUENCY_CAP_HOURS
        reasons.append(f"frequency cap ({cap} marketing emails in {hours} h)")
        until = capped_until
    quiet_end = quiet_until(until, zone)
    if quiet_end is not None:
        start, end = quiet_hours()
        reasons.append(f"quiet hours ({start:02d}:00-{end:02d}:00 in {zone.key})")
        until = quiet_end
    if not reasons:
        return None
    why = " and ".join(reasons)
    if rule.when_held == WhenHeld.SKIP:
        return Held(item, f"Skipped: {why}"[:500], status=QueueStatus.CANCELLED)
    local = until.astimezone(zone)
    return Held(item, f"Deferred to {local:%Y-%m-%d %H:%M} {zone.key}: {why}"[:500], until=until)


def send_gate_record(verdict: GateVerdict, *, now: datetime) -> None:
    """Write what the gate decided: one UPDATE for the whole batch (deferrals, skips and notes)."""
    deferred, skipped = verdict.deferred, verdict.skipped
    if not deferred and not skipped and not verdict.notes:
        return
    notes = {held.item.pk: held.reason for held in [*deferred, *skipped]} | verdict.notes
    EmailQueueItem.objects.filter(pk__in=notes).update(
        status=Case(
            *[When(pk=h.item.pk, then=Value(h.status)) for h in skipped], default=F("status"), output_field=CharField()
        ),
        last_error=Case(
            *[When(pk=h.item.pk, then=Value(h.reason)) for h in skipped],
            default=F("last_error"),
            output_field=TextField(),
        ),
        next_attempt_at=Case(
            *[When(pk=h.item.pk, then=Value(h.until)) for h in deferred],
            default=F("next_attempt_at"),
            output_field=DateTimeField(),
        ),
        send_gate_note=Case(
            *[When(pk=pk, then=Value(note)) for pk, note in notes.items()],
            default=F("send_gate_note"),
            output_field=CharField(),
        ),
        updated_at=now,
    )


def send_gate_pass(items: list[EmailQueueItem], *, now: datetime) -> list[EmailQueueItem]:
    """The queue's hook: decide for the claimed batch, write the deferrals and skips, return the emails that may go
    now (the claim renders and sends only those)."""
    verdict = send_gate_check(items, now=now)
    send_gate_record(verdict, now=now)
    for item in verdict.send:
        if item.pk in verdict.notes:
            item.send_gate_note = verdict.notes[item.pk]
    return verdict.send
