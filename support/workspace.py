"""The ticket page's writes: replies and internal notes, and the staff buttons (claim, unclaim, transfer, close,
reopen), each through the same services Discord's buttons use (support/services.py) and audited.

Every staff action writes a `TicketAuditEntry` in the transaction of the change and, when the ticket has a customer,
the same entry on the customer's timeline (source "support"), so the change and its record exist together. Calls to
Discord leave after commit, in tasks (support/workspace_discord.py).
"""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers import services as customer_services
from customers.models import TimelineSource

from . import services
from .models import Ticket, TicketStatus
from .services import _enqueue
from .workspace_models import PostKind, PostStatus, TicketAuditEntry, TicketPost

REPLY_MAX_CHARS = 1800  # Discord's 2,000 less the "Name (Support):" prefix


class ActionRefused(Exception):
    """The button does not apply to the ticket as it is now (say why; nothing changed)."""


def staff_name(user) -> str:
    return (user.get_full_name() or user.get_username())[:100]


def audit_record(*, ticket: Ticket, actor, action: str, summary: str, details: dict | None = None) -> TicketAuditEntry:
    """The audit row of a staff action on a ticket, and the customer's timeline entry when the ticket has one. Call
    inside the change's transaction."""
    entry = TicketAuditEntry.objects.create(
        ticket=ticket,
        actor=actor,
        actor_name=staff_name(actor) if actor else "system",
        action=action,
        summary=summary[:300],
        details=details or {},
    )
    if ticket.customer_id:
        customer_services.timeline_event_record(
            customer=ticket.customer,
            source=TimelineSource.SUPPORT,
            source_key=f"ticket-audit:{entry.pk}",
            kind=f"support.ticket_{action}",
            occurred_at=entry.created_at,
            summary=summary,
            payload=details or {},
            object_type="support.ticket",
            object_id=str(ticket.pk),
        )
    return entry


# --- replies and notes ---------------------------------------------------------------------------------------------


@transaction.atomic
def ticket_post_create(*, ticket: Ticket, author, kind: str, content: str, form_token: str) -> tuple[TicketPost, bool]:
    """A reply (sent to the channel after commit) or an internal note (never sent). The same form token twice is the
    same post: returns (post, False) and sends nothing again."""
    content = content.strip()
    if kind not in PostKind.values or not content or len(content) > REPLY_MAX_CHARS:
        raise ActionRefused(f"A reply or note needs 1 to {REPLY_MAX_CHARS} characters.")
    if kind == PostKind.REPLY and (ticket.status != TicketStatus.OPEN or not ticket.discord_channel_id):
        raise ActionRefused(f"Ticket #{ticket.pk} is {ticket.get_status_display().lower()}: no channel to reply in.")
    try:
        with transaction.atomic():
            post = TicketPost.objects.create(
                ticket=ticket,
                kind=kind,
                form_token=form_token,
                author=author,
                author_name=staff_name(author),
                content=content,
                status=PostStatus.PENDING if kind == PostKind.REPLY else PostStatus.INTERNAL,
            )
    except IntegrityError:  # a double click or a resubmitted form: the first one is the post
        return TicketPost.objects.get(ticket=ticket, form_token=form_token), False
    if kind == PostKind.REPLY:
        _enqueue("support.tasks_workspace.ticket_post_send_task", post.pk, name=f"ticket-post:{post.pk}")
    return post, True


@transaction.atomic
def ticket_post_sent(*, post: TicketPost, message_id: str, sent_at: datetime) -> TicketPost:
    """Discord has the reply. It is the ticket's first staff response if none was recorded (the activity job skips
    the bot's own messages, which replies from the page are)."""
    post = TicketPost.objects.select_for_update().get(pk=post.pk)
    if post.status == PostStatus.SENT:
        return post
    post.status, post.discord_message_id, post.sent_at, post.last_error = PostStatus.SENT, message_id, sent_at, ""
    post.attempts += 1
    post.save(update_fields=["status", "discord_message_id", "sent_at", "last_error", "attempts"])
    ticket = Ticket.objects.select_for_update().get(pk=post.ticket_id)
    fields = []
    if not ticket.first_staff_response_at:
        ticket.first_staff_response_at, ticket.first_responder_name = sent_at, post.author_name
        fields += ["first_staff_response_at", "first_responder_name"]
    if not ticket.last_message_at or ticket.last_message_at < sent_at:
        ticket.last_message_at = sent_at
        fields.append("last_message_at")
    if fields:
        ticket.save(update_fields=fields)
    return post


def ticket_post_failed(*, post: TicketPost, error: Exception, final: bool) -> None:
    """A send that did not get through. Not final: it stays "sending" for the retry job (same nonce)."""
    TicketPost.objects.filter(pk=post.pk, status=PostStatus.PENDING).update(
        attempts=post.attempts + 1,
        last_error=str(error)[:500],
        status=PostStatus.FAILED if final else PostStatus.PENDING,
    )


# --- the buttons -----------------------------------------------------------------------------------------------------


def _refresh_opening_message(ticket: Ticket) -> None:
    _enqueue(
        "support.tasks.ticket_opening_message_refresh_task",
        ticket.pk,
        name=f"ticket-refresh:{ticket.pk}:{timezone.now():%s%f}",
    )


def _require_open(ticket: Ticket) -> Ticket:
    ticket = Ticket.objects.select_for_update(of=("self",)).select_related("customer").get(pk=ticket.pk)
    if ticket.status != TicketStatus.OPEN:
        raise ActionRefused(f"Ticket #{ticket.pk} is {ticket.get_status_display().lower()}.")
    return ticket


@transaction.atomic
def ticket_claim_by_staff(*, ticket: Ticket, actor, to=None) -> Ticket:
    """Claim the ticket for `actor`, or transfer it to another staff member `to` (checked by the caller's form)."""
    ticket = _require_open(ticket)
    holder = to or actor
    ticket = services.ticket_claim(ticket=ticket, discord_user_id="", name=staff_name(holder))
    if to is None:
        audit_record(ticket=ticket, actor=actor, action="claim", summary=f"{staff_name(actor)} claimed #{ticket.pk}")
    else:
        audit_record(
            ticket=ticket,
            actor=actor,
            action="transfer",
            summary=f"{staff_name(actor)} transferred #{ticket.pk} to {staff_name(to)}",
            details={"to": staff_name(to), "to_user_id": to.pk},
        )
    _refresh_opening_message(ticket)
    return ticket


@transaction.atomic
def ticket_unclaim_by_staff(*, ticket: Ticket, actor) -> Ticket:
    ticket = _require_open(ticket)
    if not ticket.claimed_by_name:
        raise ActionRefused(f"Ticket #{ticket.pk} is not claimed.")
    before = ticket.claimed_by_name
    ticket = services.ticket_unclaim(ticket=ticket)
    audit_record(
        ticket=ticket,
        actor=actor,
        action="unclaim",
        summary=f"{staff_name(actor)} unclaimed #{ticket.pk} (was {before})",
        details={"was": before},
    )
    _refresh_opening_message(ticket)
    return ticket


@transaction.atomic
def ticket_close_by_staff(*, ticket: Ticket, actor, reason: str) -> Ticket:
    """Close with a reason: the same path as Discord's Close (transcript saved, then the channel deleted)."""
    ticket = _require_open(ticket)
    reason = reason.strip()
    if not reason:
        raise ActionRefused("Say why the ticket is closed.")
    ticket = services.ticket_close_request(ticket=ticket, by_name=f"{staff_name(actor)} (admin)", reason=reason)
    audit_record(
        ticket=ticket,
        actor=actor,
        action="close",
        summary=f"{staff_name(actor)} closed #{ticket.pk}: {reason}",
        details={"reason": reason},
    )
    return ticket


@transaction.atomic
def ticket_reopen_by_staff(*, ticket: Ticket, actor) -> Ticket:
    ticket = Ticket.objects.select_for_update(of=("self",)).select_related("customer").get(pk=ticket.pk)
    if ticket.status not in (TicketStatus.CLOSED, TicketStatus.NOT_OPENED):
        raise ActionRefused(f"Ticket #{ticket.pk} is {ticket.get_status_display().lower()}, not closed.")
    reopened = services.ticket_reopen(ticket=ticket)
    if reopened is None:
        raise ActionRefused("The customer already has another open ticket in this category.")
    audit_record(ticket=reopened, actor=actor, action="reopen", summary=f"{staff_name(actor)} reopened #{ticket.pk}")
    return reopened
