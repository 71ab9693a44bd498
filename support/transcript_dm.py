"""The customer's copy of the transcript: after the close, a direct message with the HTML file.

Rendered like the ticket page (support/conversation.py), from the stored messages, with attachments named rather than
linked (their copies are behind the admin). Sent once: a `TranscriptDelivery` per ticket and the nonce
`transcript-<ticket id>`; Discord keeps a nonce for a few minutes only, so a retry (after a failed attempt, or from the
retry job) first looks in the DM channel for the transcript an attempt whose answer was lost may have posted.
Discord's 50007 ("Cannot send messages to this user": DMs from server members closed, or no shared server) is final
and recorded; other failures are retried by the support.close-requests schedule (support/tasks_workspace.py) up to
MAX_ATTEMPTS. Off with DISCORD_TRANSCRIPT_DM=0.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from integrations.discord import DiscordError
from integrations.discord.client import CANNOT_MESSAGE_USER

from . import selectors, workspace_discord
from .conversation import messages_for_display, stored_as_discord
from .models import Ticket, TicketStatus
from .workspace_models import TranscriptDelivery, TranscriptDeliveryStatus

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


def transcript_for_customer(ticket: Ticket) -> str:
    history, kept = stored_as_discord(selectors.ticket_messages_with_attachments(ticket=ticket))
    return render_to_string(
        "support/transcript.html",
        {
            "ticket": ticket,
            "messages": messages_for_display(ticket, history, kept=kept),
            "generated_at": timezone.now(),
            "for_customer": True,
        },
    )


def _delivery(ticket: Ticket) -> TranscriptDelivery:
    try:
        with transaction.atomic():
            return TranscriptDelivery.objects.get_or_create(ticket=ticket)[0]
    except IntegrityError:
        return TranscriptDelivery.objects.get(ticket=ticket)


def _already_sent(discord, *, channel_id: str, ticket: Ticket, delivery: TranscriptDelivery) -> dict | None:
    """The transcript DM an earlier attempt posted, if it did (its answer lost longer ago than Discord keeps
    nonces): the bot's message since the delivery began, carrying this ticket's transcript file."""
    filename = _filename(ticket)
    after = workspace_discord.snowflake_before(delivery.created_at)
    for message in discord.messages_after(channel_id=channel_id, after=after):
        author = message.get("author") or {}
        if author.get("id") == settings.DISCORD_APPLICATION_ID and any(
            attachment.get("filename") == filename for attachment in message.get("attachments") or []
        ):
            return message
    return None


def _filename(ticket: Ticket) -> str:
    return f"ticket-{ticket.pk}-transcript.html"


def transcript_dm_run(*, ticket_id: int, look_first: bool = False) -> str:
    ticket = selectors.ticket_get(ticket_id=ticket_id)
    if ticket is None or ticket.status != TicketStatus.CLOSED or not settings.DISCORD_TRANSCRIPT_DM:
        return "nothing to do"
    delivery = _delivery(ticket)
    if delivery.status != TranscriptDeliveryStatus.PENDING:
        return "nothing to do"
    discord = workspace_discord.client()
    html = transcript_for_customer(ticket).encode()
    payload = {
        "content": f"Here is the transcript of your ModReady support ticket #{ticket.pk} ({ticket.subject}).",
        "allowed_mentions": {"parse": []},
    }
    try:
        dm = discord.dm_channel_create(recipient_id=ticket.discord_user_id)
        look = look_first or delivery.attempts > 0
        message = _already_sent(discord, channel_id=dm["id"], ticket=ticket, delivery=delivery) if look else None
        message = message or discord.message_create_once(
            channel_id=dm["id"], payload=payload, nonce=delivery.nonce, file=(_filename(ticket), html, "text/html")
        )
    except DiscordError as exc:
        refused = exc.code == CANNOT_MESSAGE_USER
        final = refused or not exc.is_retryable or delivery.attempts + 1 >= MAX_ATTEMPTS
        status = (
            TranscriptDeliveryStatus.REFUSED
            if refused
            else (TranscriptDeliveryStatus.FAILED if final else TranscriptDeliveryStatus.PENDING)
        )
        TranscriptDelivery.objects.filter(pk=delivery.pk).update(
            status=status, attempts=delivery.attempts + 1, last_error=str(exc)[:500]
        )
        return "refused" if refused else ("failed" if final else "retry")
    TranscriptDelivery.objects.filter(pk=delivery.pk).update(
        status=TranscriptDeliveryStatus.SENT,
        attempts=delivery.attempts + 1,
        discord_message_id=str(message["id"]),
        sent_at=timezone.now(),
        last_error="",
    )
    return "sent"


def transcript_dms_retry_run(*, now=None) -> int:
    """Deliveries still pending a few minutes after their last try."""
    now = now or timezone.now()
    due = list(
        TranscriptDelivery.objects.filter(
            status=TranscriptDeliveryStatus.PENDING, created_at__lte=now - timedelta(minutes=5)
        ).values_list("ticket_id", flat=True)
    )
    for ticket_id in due:
        transcript_dm_run(ticket_id=ticket_id, look_first=True)
    return len(due)
