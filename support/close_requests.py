"""Close requests: staff ask the customer in the channel whether the ticket can close.

1. Staff press "Ask the customer to close" on the ticket page: a `TicketCloseRequest` (one pending per ticket, a
   unique constraint) and its audit entry; after commit a task posts the question with two buttons ("Yes, close it",
   "No, keep it open"), nonce `close-request-<id>`.
2. The customer's click comes back as an HTTP interaction (support/interactions.py): confirm closes the ticket through
   the same service as Discord's Close; keep-open ends the request. Only the ticket's customer may answer.
3. A message from the customer after the question cancels the request: the activity job (every 2 minutes) and the
   close-requests job both read the channel.
4. Without an answer the `support.close-requests` schedule (every 5 minutes) closes the ticket once `due_at`
   (DISCORD_CLOSE_REQUEST_HOURS after the question) has passed, after reading the channel one last time.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.discord import DiscordError

from . import discord_messages as msg
from . import services, workspace, workspace_discord
from .models import Ticket, TicketStatus
from .services import _enqueue
from .workspace_models import CloseRequestStatus, TicketCloseRequest

logger = logging.getLogger(__name__)


@transaction.atomic
def close_request_create(*, ticket: Ticket, actor, reason: str = "", now: datetime | None = None) -> TicketCloseRequest:
    now = now or timezone.now()
    ticket = workspace._require_open(ticket)
    try:
        with transaction.atomic():
            request = TicketCloseRequest.objects.create(
                ticket=ticket,
                requested_by=actor,
                requested_by_name=workspace.staff_name(actor),
                reason=reason.strip()[:500],
                requested_at=now,
                due_at=now + timedelta(hours=settings.DISCORD_CLOSE_REQUEST_HOURS),
            )
    except IntegrityError as exc:
        raise workspace.ActionRefused("The customer has already been asked; waiting for their answer.") from exc
    workspace.audit_record(
        ticket=ticket,
        actor=actor,
        action="close_request",
        summary=f"{workspace.staff_name(actor)} asked the customer to close #{ticket.pk}",
        details={"reason": request.reason, "due_at": request.due_at.isoformat()},
    )
    _enqueue("support.tasks_workspace.close_request_post_task", request.pk, name=f"close-request:{request.pk}")
    return request


def _end(request: TicketCloseRequest, status: str, *, now: datetime | None = None) -> bool:
    """Move a pending request to `status`; False when it was not pending any more (answered twice, raced)."""
    return bool(
        TicketCloseRequest.objects.filter(pk=request.pk, status=CloseRequestStatus.PENDING).update(
            status=status, answered_at=now or timezone.now()
        )
    )


def close_request_post_run(*, request_id: int, look_first: bool = False) -> str:
    request = TicketCloseRequest.objects.select_related("ticket").filter(pk=request_id).first()
    if request is None or request.status != CloseRequestStatus.PENDING or request.message_id:
        return "nothing to do"
    ticket = request.ticket
    payload = workspace_discord.close_request_message(
        ticket=ticket,
        asked_by=request.requested_by_name,
        reason=request.reason,
        due_at=request.due_at,
        request_id=request.pk,
    )
    discord = workspace_discord.client()
    try:
        # After a failed attempt, or from the schedule (the first task may have died after Discord posted it), look
        # first: an answer may have been lost longer ago than Discord keeps nonces.
        look = look_first or request.last_error
        message = _question_in_channel(discord, request) if look else None
        message = message or discord.message_create_once(
            channel_id=ticket.discord_channel_id, payload=payload, nonce=request.nonce
        )
    except DiscordError as exc:  # the retry job asks again (same nonce): the question is posted at most once
        TicketCloseRequest.objects.filter(pk=request.pk).update(last_error=str(exc)[:500])
        return "retry"
    TicketCloseRequest.objects.filter(pk=request.pk).update(message_id=str(message["id"]), last_error="")
    workspace_discord.conversation_forget(ticket)
    return "posted"


def _question_in_channel(discord, request: TicketCloseRequest) -> dict | None:
    wanted = f"ticket:{request.ticket_id}:close-confirm:{request.pk}"
    for message in discord.messages_history(channel_id=request.ticket.discord_channel_id):
        for row in message.get("components") or []:
            if any(c.get("custom_id") == wanted for c in row.get("components") or []):
                return message
    return None


def close_request_answer(*, ticket: Ticket, request_id: str, confirm: bool, user_id: str, name: str) -> dict:
    """The customer's click on the question (an interaction answer: the question is updated in place, type 7)."""
    request = TicketCloseRequest.objects.filter(pk=int(request_id or 0), ticket=ticket).first()
    if user_id != ticket.discord_user_id:
        return msg.ephemeral("Only the customer who opened this ticket can answer.")
    if request is None or not _end(request, CloseRequestStatus.CONFIRMED if confirm else CloseRequestStatus.KEPT_OPEN):
        return msg.ephemeral("This question has already been answered.")
    if confirm:
        services.ticket_close_request(
            ticket=ticket, by_discord_id=user_id, by_name=name, reason="The customer confirmed the close request"
        )
        text = f"<@{user_id}> confirmed: closing this ticket. Saving the transcript, then this channel goes."
    else:
        text = f"<@{user_id}> kept this ticket open. Staff will follow up here."
    return {
        "type": msg.UPDATE_MESSAGE,
        "data": {"content": text, "components": [], "allowed_mentions": msg.NO_MENTIONS},
    }


def customer_wrote(*, ticket: Ticket, messages: list[dict]) -> bool:
    """Cancel the pending request when the customer wrote after its question; True when one was cancelled."""
    request = TicketCloseRequest.objects.filter(ticket=ticket, status=CloseRequestStatus.PENDING).first()
    if request is None or not request.message_id:
        return False
    for message in messages:
        author = (message.get("author") or {}).get("id")
        if author == ticket.discord_user_id and int(message["id"]) > int(request.message_id):
            return _end(request, CloseRequestStatus.CANCELLED)
    return False


def close_requests_run(*, now: datetime | None = None) -> dict:
    """Schedule (every 5 minutes): post questions not posted yet; cancel requests the customer answered by writing;
    close tickets whose request is due and unanswered."""
    now = now or timezone.now()
    counts = {"posted": 0, "cancelled": 0, "closed": 0}
    pending = TicketCloseRequest.objects.filter(status=CloseRequestStatus.PENDING).select_related("ticket")
    for request in pending:
        ticket = request.ticket
        if ticket.status != TicketStatus.OPEN:
            _end(request, CloseRequestStatus.CANCELLED, now=now)
            continue
        if not request.message_id:
            counts["posted"] += close_request_post_run(request_id=request.pk, look_first=True) == "posted"
            continue
        try:
            read = workspace_discord.client().messages_after(
                channel_id=ticket.discord_channel_id, after=request.message_id
            )
            if customer_wrote(ticket=ticket, messages=list(read)):
                counts["cancelled"] += 1
                continue
        except DiscordError as exc:  # no close without a last look at the channel
            logger.warning("Close request %s: channel not read: %s", request.pk, exc)
            continue
        if now >= request.due_at and _end(request, CloseRequestStatus.EXPIRED, now=now):
            services.ticket_close_request(
                ticket=ticket, by_name="close request", reason="No answer to the close request"
            )
            counts["closed"] += 1
    return counts
