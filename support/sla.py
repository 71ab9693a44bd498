"""SLA clocks: how long a customer has waited for staff, in support hours (support/support_time.py), against the
targets per category and priority (SlaTarget; VIP tickets are "high"). Only this module writes TicketSla,
TicketResponse and SlaAlert; the ping itself is sent by support/sla_workflows.py.

The clock starts when the ticket opens (the first response) and again at the customer's first message after a staff
response (the next response); a staff message stops it and is recorded as a response, with its wait in support
hours and on the wall clock. Messages are read from the channel by the activity job (no gateway), so a response is
seen within its 2 minutes.
"""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .category_roles import staff_role_for
from .models import Ticket, TicketStatus
from .sla_models import ResponseKind, SlaAlert, SlaTarget, TicketResponse, TicketSla
from .support_time import support_deadline, support_seconds_between


def sla_target_for(*, category: str, priority: str) -> SlaTarget | None:
    """The category's own target for this priority, else the one for every category."""
    targets = {
        t.category: t for t in SlaTarget.objects.filter(Q(category=category) | Q(category=""), priority=priority)
    }
    return targets.get(category) or targets.get("")


def target_seconds(target: SlaTarget | None, kind: str) -> int | None:
    if target is None:
        return None
    minutes = target.first_response_minutes if kind == ResponseKind.FIRST else target.next_response_minutes
    return minutes * 60


def _deadlines(sla: TicketSla, ticket: Ticket) -> None:
    """Set due_at and warn_at from the waiting start and the target (support hours), or clear them."""
    target = sla_target_for(category=ticket.category, priority=ticket.priority)
    seconds = target_seconds(target, sla.waiting_kind)
    if sla.waiting_since is None or seconds is None:
        sla.due_at = sla.warn_at = None
        return
    sla.due_at = support_deadline(sla.waiting_since, seconds)
    sla.warn_at = support_deadline(sla.waiting_since, max(seconds - target.warn_minutes * 60, 0))


def _sla_of(ticket: Ticket) -> TicketSla:
    sla, _ = TicketSla.objects.select_for_update().get_or_create(
        ticket=ticket, defaults={"waiting_since": ticket.opened_at}
    )
    return sla


@transaction.atomic
def sla_messages_record(*, ticket: Ticket, messages: list[dict]) -> TicketSla:
    """Fold newly read messages (oldest first, each read once: support.services.ticket_activity_record filters) into
    the ticket's clock: a customer message starts a wait, a staff message ends it as a response."""
    sla = _sla_of(ticket)
    target = sla_target_for(category=ticket.category, priority=ticket.priority)
    for message in messages:
        author = message.get("author") or {}
        if author.get("bot"):
            continue
        sent_at = datetime.fromisoformat(message["timestamp"])
        if author.get("id") == ticket.discord_user_id:
            if sla.waiting_since is None:
                sla.waiting_since = sent_at
            continue
        if sla.waiting_since is None or sent_at < sla.waiting_since:
            continue  # staff wrote again, or before the wait began: not a response to anything
        kind = sla.waiting_kind
        support = support_seconds_between(sla.waiting_since, sent_at)
        limit = target_seconds(target, kind)
        TicketResponse.objects.get_or_create(
            ticket=ticket,
            number=sla.responses + 1,
            defaults={
                "kind": kind,
                "waited_from": sla.waiting_since,
                "answered_at": sent_at,
                "responder_discord_id": str(author.get("id") or ""),
                "responder_name": str(author.get("global_name") or author.get("username") or "")[:100],
                "support_seconds": support,
                "wall_seconds": int((sent_at - sla.waiting_since).total_seconds()),
                "target_seconds": limit,
                "breached": limit is not None and support > limit,
            },
        )
        sla.responses += 1
        sla.waiting_since = None
    _deadlines(sla, ticket)
    sla.save()
    return sla


@transaction.atomic
def sla_clocks_refresh() -> int:
    """Start the clock of open tickets that have none yet (nobody wrote since they opened) and recompute every
    waiting ticket's deadlines (a target edited in the admin applies at once). Returns the clocks looked at."""
    missing = Ticket.objects.filter(status=TicketStatus.OPEN, sla__isnull=True).only("pk", "opened_at")
    TicketSla.objects.bulk_create(
        [TicketSla(ticket=t, waiting_since=t.opened_at) for t in missing], ignore_conflicts=True
    )
    # Only the clocks are locked, not their tickets: the activity job locks a ticket, then its clock.
    waiting = (
        TicketSla.objects.select_for_update(of=("self",))
        .select_related("ticket")
        .filter(ticket__status=TicketStatus.OPEN, waiting_since__isnull=False)
    )
    changed = []
    for sla in waiting:
        due, warn = sla.due_at, sla.warn_at
        _deadlines(sla, sla.ticket)
        if (due, warn) != (sla.due_at, sla.warn_at):
            changed.append(sla)
    TicketSla.objects.bulk_update(changed, ["due_at", "warn_at"])
    return len(waiting)


def tickets_to_warn(*, now: datetime) -> list[TicketSla]:
    """Open tickets whose customer is waiting and whose warning time has come."""
    return list(
        TicketSla.objects.select_related("ticket").filter(
            ticket__status=TicketStatus.OPEN, waiting_since__isnull=False, warn_at__lte=now
        )
    )


def sla_alert_claim(*, sla: TicketSla) -> SlaAlert | None:
    """The alert row for this wait, created once (unique on ticket, kind, response number); None when it was sent
    already. An unsent one (a failed post) is returned again so the next poll tries it."""
    number = sla.responses + 1
    try:
        with transaction.atomic():
            return SlaAlert.objects.create(
                ticket_id=sla.ticket_id,
                kind=sla.waiting_kind,
                response_number=number,
                due_at=sla.due_at,
                role_id=staff_role_for(sla.ticket.category),
            )
    except IntegrityError:
        alert = SlaAlert.objects.get(ticket_id=sla.ticket_id, kind=sla.waiting_kind, response_number=number)
        return None if alert.sent_at else alert


def sla_alert_sent(*, alert: SlaAlert, message_id: str) -> None:
    SlaAlert.objects.filter(pk=alert.pk).update(sent_at=timezone.now(), discord_message_id=message_id, last_error="")


def sla_alert_failed(*, alert: SlaAlert, error: Exception) -> None:
    SlaAlert.objects.filter(pk=alert.pk).update(last_error=str(error)[:500])


def sla_state_filter(state: str, *, now: datetime) -> Q:
    """Tickets by SLA state, for the admin's filter: "breaching" (warned, not yet due), "breached" (waiting past the
    target now), "missed" (any response, or the current wait, past its target)."""
    waiting = Q(status=TicketStatus.OPEN, sla__waiting_since__isnull=False)
    if state == "breaching":
        return waiting & Q(sla__warn_at__lte=now, sla__due_at__gt=now)
    if state == "breached":
        return waiting & Q(sla__due_at__lte=now)
    if state == "missed":
        return (waiting & Q(sla__due_at__lte=now)) | Q(responses__breached=True)
    return Q()


def remaining(sla: TicketSla, *, now: datetime) -> timedelta | None:
    """Support-hours time left before the target (negative once missed); None when nobody waits or no target."""
    if sla.waiting_since is None or sla.due_at is None:
        return None
    if now >= sla.due_at:
        return -timedelta(seconds=support_seconds_between(sla.due_at, now))
    return timedelta(seconds=support_seconds_between(now, sla.due_at))
