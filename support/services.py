"""The only writers of support's tables. Calls to Discord live in support/workflows.py and run in tasks."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers import services as customer_services
from customers.models import Customer, TimelineSource

from . import hours, identity, selectors, sla
from .models import (
    DiscordInteraction,
    SupportPanel,
    Ticket,
    TicketAttachment,
    TicketCategory,
    TicketMessage,
    TicketPriority,
    TicketStatus,
)
from .open_lock import ticket_open_lock
from .ticket_timeline import ticket_opened_record
from .triage import triage

logger = logging.getLogger(__name__)


def _enqueue(func: str, *args, name: str) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task(func, *args, task_name=name))


def interaction_record(
    *, interaction_id: str, interaction_type: int, custom_id: str = "", discord_user_id: str = ""
) -> bool:
    """Store a delivered interaction; False when this id was delivered before (then nothing else may act on it)."""
    try:
        with transaction.atomic():
            DiscordInteraction.objects.create(
                interaction_id=interaction_id,
                interaction_type=interaction_type,
                custom_id=custom_id[:100],
                discord_user_id=discord_user_id,
            )
        return True
    except IntegrityError:
        return False


# --- opening ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenResult:
    ticket: Ticket | None
    refusal: str = ""  # shown to the customer when no ticket was opened


def _customer_link(*, discord_user_id: str) -> tuple[Customer | None, str]:
    """The customer whose proven Discord link is this user. A typed email links nothing (support/identity.py)."""
    customer = selectors.customer_by_discord_id(discord_user_id=discord_user_id)
    return (customer, "discord") if customer else (None, "")


def open_refusal(*, discord_user_id: str, category: str = "", now: datetime | None = None) -> str:
    """Why this user may not open a ticket now ("" when they may): too many open, or a cooldown after a close."""
    now = now or timezone.now()
    active = selectors.active_tickets_of(discord_user_id=discord_user_id)
    if category:
        same = next((t for t in active if t.category == category), None)
        if same:
            where = f" in <#{same.discord_channel_id}>" if same.discord_channel_id else ""
            return f"You already have an open {same.get_category_display().lower()} ticket (#{same.pk}){where}."
    if len(active) >= settings.DISCORD_MAX_OPEN_TICKETS_PER_USER:
        return f"You have {len(active)} open tickets; please finish one before opening another."
    cooldown = timedelta(minutes=settings.DISCORD_REOPEN_COOLDOWN_MINUTES)
    recent = selectors.last_closed_ticket_of(discord_user_id=discord_user_id)
    if recent and recent.closed_at and now - recent.closed_at < cooldown:
        ready = recent.closed_at + cooldown
        return f"Your last ticket closed a moment ago; you can open a new one <t:{int(ready.timestamp())}:R>."
    return ""


@transaction.atomic
def ticket_open_request(
    *,
    discord_user_id: Annotated[str, "who submitted the modal"],
    username: str,
    category: str,
    subject: str,
    description: str,
    email: str = "",
    interaction_token: str = "",
    now: datetime | None = None,
) -> OpenResult:
    """Create the ticket row (status opening) and enqueue the channel's creation. Refusals open nothing."""
    now = now or timezone.now()
    if category not in TicketCategory.values:
        return OpenResult(None, "Please pick one of the categories.")
    ticket_open_lock(discord_user_id=discord_user_id)  # the cap below is counted with no other opening in between
    refusal = open_refusal(discord_user_id=discord_user_id, category=category, now=now)
    if refusal:
        return OpenResult(None, refusal)
    customer, linked_by = _customer_link(discord_user_id=discord_user_id)
    suggestion = triage(subject=subject, description=description) if category == TicketCategory.OTHER else None
    ticket = Ticket(
        customer=customer,
        customer_link=linked_by,
        discord_user_id=discord_user_id,
        discord_username=username[:100],
        category=category,
        suggested_category=suggestion.category if suggestion else "",
        triage_reason=suggestion.reason if suggestion else "",
        subject=subject.strip()[:200],
        description=description.strip(),
        contact_email=email.strip()[:254],
        priority=TicketPriority.HIGH if customer and customer.vip_status else TicketPriority.NORMAL,
        outside_support_hours=hours.next_staffed_time(now) is not None,
        interaction_token=interaction_token,
        interaction_at=now,
    )
    try:
        with transaction.atomic():
            ticket.save()
    except IntegrityError:
        # The other click (or a racing submit) won: the unique constraint, not the check above, decides.
        return OpenResult(None, open_refusal(discord_user_id=discord_user_id, category=category) or "Already open.")
    identity.link_request_for_ticket(ticket=ticket)  # the typed email's owner may confirm it from their mailbox
    _enqueue("support.tasks.ticket_open_task", ticket.pk, name=f"ticket-open:{ticket.pk}")
    return OpenResult(ticket)


@transaction.atomic
def ticket_channel_opened(*, ticket: Ticket, channel_id: str) -> Ticket:
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    ticket.discord_channel_id = channel_id
    ticket.status = TicketStatus.OPEN
    ticket.last_error = ""
    ticket.save(update_fields=["discord_channel_id", "status", "last_error"])
    if ticket.customer_id:
        ticket_opened_record(ticket=ticket, customer=ticket.customer)
    return ticket


def ticket_opening_message_set(*, ticket: Ticket, message_id: str) -> None:
    Ticket.objects.filter(pk=ticket.pk).update(opening_message_id=message_id)


@transaction.atomic
def ticket_not_opened(*, ticket: Ticket, reason: str) -> None:
    """No channel could be made (every category full): the ticket is not open, and frees its unique slot."""
    Ticket.objects.filter(pk=ticket.pk, status=TicketStatus.OPENING).update(
        status=TicketStatus.NOT_OPENED, close_reason=reason[:500], closed_at=timezone.now()
    )


def tickets_opening_give_up(*, opened_before: datetime) -> int:
    """Tickets that could not get a channel for a long time (Discord down, a bad token) stop holding the customer's
    slot: they become "not opened" and keep their last error for staff."""
    return Ticket.objects.filter(status=TicketStatus.OPENING, interaction_at__lt=opened_before).update(
        status=TicketStatus.NOT_OPENED, closed_at=timezone.now(), close_reason="Discord unavailable while opening"
    )


def ticket_error_record(*, ticket: Ticket, error: Exception) -> None:
    Ticket.objects.filter(pk=ticket.pk).update(last_error=str(error)[:2000], last_error_at=timezone.now())


# --- working ------------------------------------------------------------------------------------------------------


@transaction.atomic
def ticket_claim(*, ticket: Ticket, discord_user_id: str, name: str) -> Ticket:
    """Claim (or transfer to) a staff member."""
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    ticket.claimed_by_discord_id = discord_user_id
    ticket.claimed_by_name = name[:100]
    ticket.claimed_at = timezone.now()
    ticket.save(update_fields=["claimed_by_discord_id", "claimed_by_name", "claimed_at"])
    return ticket


@transaction.atomic
def ticket_transfer(*, ticket: Ticket, discord_user_id: str, name: str) -> Ticket:
    """Claim on someone else's behalf; the opening message is refreshed to show it."""
    ticket = ticket_claim(ticket=ticket, discord_user_id=discord_user_id, name=name)
    _enqueue(
        "support.tasks.ticket_opening_message_refresh_task",
        ticket.pk,
        name=f"ticket-refresh:{ticket.pk}:{ticket.claimed_at:%s%f}",
    )
    return ticket


@transaction.atomic
def ticket_unclaim(*, ticket: Ticket) -> Ticket:
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    ticket.claimed_by_discord_id = ticket.claimed_by_name = ""
    ticket.claimed_at = None
    ticket.save(update_fields=["claimed_by_discord_id", "claimed_by_name", "claimed_at"])
    return ticket


@transaction.atomic
def ticket_activity_record(*, ticket: Ticket, messages: list[dict]) -> Ticket:
    """Fold newly read channel messages (oldest first) into the ticket's counters.

    A staff response is any message by someone other than the customer and the bot: REST messages carry no roles,
    and only the customer and staff can see the channel.
    """
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    fields = {"last_seen_message_id"}
    fresh = []
    for message in messages:
        if int(message["id"]) <= int(ticket.last_seen_message_id or 0):
            continue  # read twice (a retried run): already counted
        fresh.append(message)
        ticket.last_seen_message_id = message["id"]
        author = message.get("author") or {}
        if author.get("bot"):
            continue
        sent_at = datetime.fromisoformat(message["timestamp"])
        ticket.message_count += 1
        ticket.last_message_at = max(filter(None, [ticket.last_message_at, sent_at]))
        fields |= {"message_count", "last_message_at"}
        if author.get("id") != ticket.discord_user_id and not ticket.first_staff_response_at:
            ticket.first_staff_response_at = sent_at
            ticket.first_responder_discord_id = author.get("id", "")
            ticket.first_responder_name = (author.get("global_name") or author.get("username") or "")[:100]
            fields |= {"first_staff_response_at", "first_responder_discord_id", "first_responder_name"}
    ticket.save(update_fields=sorted(fields))
    sla.sla_messages_record(ticket=ticket, messages=fresh)  # the SLA clock reads the same messages once
    return ticket


def ticket_inactivity_warned(*, ticket: Ticket) -> None:
    Ticket.objects.filter(pk=ticket.pk).update(inactivity_warned_at=timezone.now())


@transaction.atomic
def ticket_close_request(*, ticket: Ticket, by_discord_id: str = "", by_name: str, reason: str = "") -> Ticket:
    """Mark the ticket closing and enqueue the close (transcript first, then the channel). Twice is harmless."""
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if ticket.status != TicketStatus.OPEN:
        return ticket
    ticket.status = TicketStatus.CLOSING
    ticket.close_requested_at = timezone.now()
    ticket.closed_by_discord_id = by_discord_id
    ticket.closed_by_name = by_name[:100]
    ticket.close_reason = reason.strip()[:500]
    ticket.save(
        update_fields=["status", "close_requested_at", "closed_by_discord_id", "closed_by_name", "close_reason"]
    )
    _enqueue("support.tasks.ticket_close_task", ticket.pk, name=f"ticket-close:{ticket.pk}:{ticket.close_attempts}")
    return ticket


@transaction.atomic
def ticket_transcript_store(*, ticket: Ticket, messages: list[dict], files: dict[str, bytes | None], html: str) -> int:
    """Save every message and attachment (upserts: a retried close adds nothing twice). Returns messages stored.

    `files` maps attachment ids to their bytes (None: larger than the cap). An attachment absent from `files`
    was not downloaded and must not be stored, so the caller fails the close instead.
    """
    Ticket.objects.select_for_update().get(pk=ticket.pk)  # two closes of one ticket store one after the other
    stored = dict(TicketMessage.objects.filter(ticket=ticket).values_list("discord_message_id", "pk"))
    have_files = set(
        TicketAttachment.objects.filter(message__ticket=ticket).values_list("discord_attachment_id", flat=True)
    )
    new_rows = []
    for message in messages:
        if message["id"] in stored:
            continue
        author = message.get("author") or {}
        new_rows.append(
            TicketMessage(
                ticket=ticket,
                discord_message_id=message["id"],
                author_id=author.get("id", ""),
                author_name=(author.get("global_name") or author.get("username") or "")[:100],
                author_is_bot=bool(author.get("bot")),
                content=message.get("content", ""),
                embeds=message.get("embeds") or [],
                sent_at=datetime.fromisoformat(message["timestamp"]),
            )
        )
    for row in TicketMessage.objects.bulk_create(new_rows, batch_size=500):
        stored[row.discord_message_id] = row.pk
    attachments = []
    for message in messages:
        for attachment in message.get("attachments") or []:
            if attachment["id"] in have_files:
                continue
            data = files[attachment["id"]]
            attachments.append(
                TicketAttachment(
                    message_id=stored[message["id"]],
                    discord_attachment_id=attachment["id"],
                    filename=attachment.get("filename", "")[:255],
                    content_type=(attachment.get("content_type") or "")[:100],
                    size=attachment.get("size") or 0,
                    data=data,
                    too_large=data is None,
                )
            )
    TicketAttachment.objects.bulk_create(attachments, batch_size=100)
    Ticket.objects.filter(pk=ticket.pk).update(transcript_html=html)
    return len(messages)


def ticket_close_attempt_failed(*, ticket: Ticket, error: Exception) -> None:
    Ticket.objects.filter(pk=ticket.pk).update(
        close_attempts=ticket.close_attempts + 1, last_error=str(error)[:2000], last_error_at=timezone.now()
    )


@transaction.atomic
def ticket_closed(*, ticket: Ticket) -> Ticket:
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if ticket.status == TicketStatus.CLOSED:
        return ticket
    ticket.status = TicketStatus.CLOSED
    ticket.closed_at = timezone.now()
    ticket.last_error = ""
    ticket.save(update_fields=["status", "closed_at", "last_error"])
    if ticket.customer_id:
        customer_services.timeline_event_record(
            customer=ticket.customer,
            source=TimelineSource.SUPPORT,
            source_key=f"ticket:{ticket.pk}:closed:{ticket.close_requested_at.isoformat()}",
            kind="support.ticket_closed",
            occurred_at=ticket.closed_at,
            summary=f"Closed ticket #{ticket.pk} by {ticket.closed_by_name}"
            + (f": {ticket.close_reason}" if ticket.close_reason else ""),
            payload={"reason": ticket.close_reason, "messages": ticket.message_count},
            object_type="support.ticket",
            object_id=str(ticket.pk),
        )
    _enqueue("support.tasks.ticket_feedback_request_task", ticket.pk, name=f"ticket-feedback:{ticket.pk}")
    return ticket


@transaction.atomic
def ticket_rate(*, ticket: Ticket, discord_user_id: str, rating: int, comment: str = "") -> bool:
    """The customer's 1-5 rating of a closed ticket; False when not theirs or not a valid rating."""
    if discord_user_id != ticket.discord_user_id or ticket.status != TicketStatus.CLOSED or not 1 <= rating <= 5:
        return False
    Ticket.objects.filter(pk=ticket.pk).update(rating=rating, rating_comment=comment.strip(), rated_at=timezone.now())
    return True


@transaction.atomic
def ticket_reopen(*, ticket: Ticket) -> Ticket | None:
    """Open a closed ticket again in a new channel; None when the user already has another active one there."""
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if ticket.status not in (TicketStatus.CLOSED, TicketStatus.NOT_OPENED):
        return ticket
    ticket.status = TicketStatus.OPENING
    ticket.discord_channel_id = ticket.opening_message_id = ticket.interaction_token = ""
    ticket.closed_at = ticket.close_requested_at = ticket.inactivity_warned_at = None
    ticket.last_seen_message_id = ""
    try:
        with transaction.atomic():
            ticket.save()
    except IntegrityError:
        return None
    _enqueue("support.tasks.ticket_open_task", ticket.pk, name=f"ticket-reopen:{ticket.pk}:{timezone.now():%s}")
    return ticket


def support_panel_record(*, channel_id: str, message_id: str) -> SupportPanel:
    panel, _ = SupportPanel.objects.update_or_create(channel_id=channel_id, defaults={"message_id": message_id})
    return panel
