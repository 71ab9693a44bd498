"""The support work that calls Discord's REST API, run from tasks (support/tasks.py), never from a web request.

Each step is safe to run twice: it checks what Discord and our database already hold before acting again (a call
that timed out may have been applied). Writes go through support.services.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from integrations import alerts
from integrations.discord import DiscordClient, DiscordError
from integrations.discord.client import (
    INVALID_FORM_BODY,
    MAX_GUILD_CHANNELS,
    TICKET_MEMBER_PERMISSIONS,
    UNKNOWN_CHANNEL,
    VIEW_CHANNEL,
)

from . import discord_messages as msg
from . import hours, markup, selectors, services
from .category_roles import staff_role_for
from .channel_placement import categories_with_room
from .message_content import MessageContentMissing, content_check
from .models import SupportPanel, Ticket, TicketAttachment, TicketStatus

logger = logging.getLogger(__name__)

INTERACTION_TOKEN_LIFETIME = timedelta(minutes=14)  # Discord's is 15; keep a margin


def client() -> DiscordClient:
    return DiscordClient.from_settings()


class NoRoomForTicket(Exception):
    """Every ticket category is full (50 channels each) or the guild is (500)."""


def permission_overwrites(ticket: Ticket) -> list[dict]:
    """@everyone (the guild id) may not view; the customer, the staff role (the category's own when it names one,
    support/category_roles.py) and the bot may work in the channel."""
    allow = str(TICKET_MEMBER_PERMISSIONS)
    return [
        {"id": settings.DISCORD_GUILD_ID, "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)},
        {"id": ticket.discord_user_id, "type": 1, "allow": allow, "deny": "0"},
        {"id": staff_role_for(ticket.category), "type": 0, "allow": allow, "deny": "0"},
        {"id": settings.DISCORD_APPLICATION_ID, "type": 1, "allow": allow, "deny": "0"},
    ]


def _reply(discord: DiscordClient, ticket: Ticket, content: str) -> None:
    """Edit the customer's ephemeral "working on it" reply, while its interaction token is still valid."""
    if not ticket.interaction_token or not ticket.interaction_at:
        return
    if timezone.now() - ticket.interaction_at > INTERACTION_TOKEN_LIFETIME:
        return
    try:
        discord.interaction_original_edit(
            interaction_token=ticket.interaction_token,
            payload={"content": content, "allowed_mentions": msg.NO_MENTIONS},
        )
    except DiscordError as exc:  # the ticket exists either way; the reply is a courtesy
        logger.warning("Could not edit the reply of ticket %s: %s", ticket.pk, exc)


def _create_channel(discord: DiscordClient, ticket: Ticket) -> str:
    # A previous attempt may have created the channel and lost the answer: look before creating another.
    channels = discord.guild_channels(guild_id=settings.DISCORD_GUILD_ID)
    for channel in channels:
        if channel.get("name") == ticket.channel_name and channel.get("type") == 0:
            return channel["id"]
    # Start from the first category with room (support/channel_placement.py), not from the first one every time.
    for category_id in categories_with_room(channels=channels, category_ids=settings.DISCORD_TICKET_CATEGORY_IDS):
        try:
            channel = discord.channel_create(
                guild_id=settings.DISCORD_GUILD_ID,
                name=ticket.channel_name,
                parent_id=category_id,
                permission_overwrites=permission_overwrites(ticket),
                topic=f"Ticket #{ticket.pk} · {ticket.get_category_display()} · {ticket.subject}",
            )
            return channel["id"]
        except DiscordError as exc:
            if exc.code == INVALID_FORM_BODY and "parent_id" in exc.message:
                continue  # this category is full: the next one (overflow)
            if exc.code == MAX_GUILD_CHANNELS:
                raise NoRoomForTicket("the server holds 500 channels") from exc
            raise
    raise NoRoomForTicket("every ticket category is full")


def ticket_open_run(*, ticket_id: int) -> str:
    """Create the channel, post the opening message, tell the customer. A Discord failure leaves the ticket
    "opening" with its error, for support.tasks.tickets_retry_task."""
    ticket = selectors.ticket_get(ticket_id=ticket_id)
    if ticket is None or ticket.status != TicketStatus.OPENING:
        return "nothing to do"
    discord = client()
    try:
        channel_id = _create_channel(discord, ticket)
    except NoRoomForTicket as exc:
        services.ticket_not_opened(ticket=ticket, reason=str(exc))
        _reply(
            discord,
            ticket,
            "Sorry, all our ticket channels are in use right now, so no ticket was opened. "
            "Please try again in a little while, or email support@modready.example.",
        )
        return "no room"
    except DiscordError as exc:  # left "opening"; the retry job tries again (support.tasks.tickets_retry_task)
        services.ticket_error_record(ticket=ticket, error=exc)
        if exc.is_auth_failure:
            _reply(discord, ticket, "Sorry, we could not open your ticket; staff have been told.")
            return "auth failure"
        logger.warning("Opening ticket %s failed, will retry: %s", ticket.pk, exc)
        return "retry"
    ticket = services.ticket_channel_opened(ticket=ticket, channel_id=channel_id)
    try:
        opening = discord.message_create(
            channel_id=channel_id,
            payload=msg.opening_message(ticket, selectors.ticket_customer_context(ticket=ticket)),
        )
        services.ticket_opening_message_set(ticket=ticket, message_id=opening["id"])
        back = hours.next_staffed_time(timezone.now()) if ticket.outside_support_hours else None
        if back:
            notice = f"Our team is off right now and back <t:{int(back.timestamp())}:F>. We will answer then."
            discord.message_create(
                channel_id=channel_id, payload={"content": notice, "allowed_mentions": msg.NO_MENTIONS}
            )
    except DiscordError as exc:  # the channel is there and linked; staff see the error on the ticket
        services.ticket_error_record(ticket=ticket, error=exc)
    text = f"Your ticket is open: <#{channel_id}>"
    if ticket.outside_support_hours:
        text += " (we are outside support hours; staff will answer when they are back)"
    _reply(discord, ticket, text)
    return "opened"


def ticket_opening_message_refresh(*, ticket_id: int) -> None:
    """Show the current claim on the opening message (after a transfer, which answers with a new message)."""
    ticket = selectors.ticket_get(ticket_id=ticket_id)
    if not ticket or not ticket.opening_message_id or ticket.status != TicketStatus.OPEN:
        return
    client().message_edit(
        channel_id=ticket.discord_channel_id,
        message_id=ticket.opening_message_id,
        payload=msg.opening_message(ticket, selectors.ticket_customer_context(ticket=ticket)),
    )


# --- reading activity and closing inactive tickets -----------------------------------------------------------------


def _read_new(discord: DiscordClient, ticket: Ticket) -> Ticket:
    """Fold the channel's messages after the last one seen into the ticket. Raises DiscordError."""
    messages = list(discord.messages_after(channel_id=ticket.discord_channel_id, after=ticket.last_seen_message_id))
    return services.ticket_activity_record(ticket=ticket, messages=messages) if messages else ticket


def activity_read_run(*, limit: int = 200) -> int:
    """Read new messages of open tickets (after= the last one seen) and record counts and first response.

    With no open ticket it asks Discord nothing (a local run without Discord credentials has none)."""
    tickets = list(selectors.tickets_to_read(limit=limit))
    if not tickets:
        return 0
    discord = client()
    read = 0
    for ticket in tickets:
        before = ticket.message_count
        try:
            read += _read_new(discord, ticket).message_count - before
        except DiscordError as exc:
            services.ticket_error_record(ticket=ticket, error=exc)
            if exc.is_auth_failure:
                break  # the same token fails for every ticket: stop instead of piling up invalid requests
    return read


def autoclose_run() -> dict:
    """Warn tickets silent for DISCORD_AUTOCLOSE_WARN_HOURS; close those still silent a grace period later.

    Silence is measured from the last message, or from the opening when nobody wrote anything at all.
    """
    now = timezone.now()
    warn_before = now - timedelta(hours=settings.DISCORD_AUTOCLOSE_WARN_HOURS)
    grace = timedelta(hours=settings.DISCORD_AUTOCLOSE_GRACE_HOURS)
    warned = closed = 0
    discord = None
    for ticket in selectors.tickets_inactive(since=warn_before):
        discord = discord or client()
        try:  # the activity job may lag: look at the channel before warning or closing
            ticket = _read_new(discord, ticket)
        except DiscordError as exc:
            services.ticket_error_record(ticket=ticket, error=exc)
            continue
        if (ticket.last_message_at or ticket.opened_at) >= warn_before:
            continue
        silent_since_warning = ticket.inactivity_warned_at and (
            not ticket.last_message_at or ticket.last_message_at < ticket.inactivity_warned_at
        )
        if silent_since_warning:
            if now - ticket.inactivity_warned_at >= grace:
                services.ticket_close_request(ticket=ticket, by_name="auto-close", reason="No activity")
                closed += 1
            continue
        deadline = now + grace
        try:
            discord.message_create(
                channel_id=ticket.discord_channel_id,
                payload={
                    "content": f"<@{ticket.discord_user_id}> this ticket has been quiet for a while. It closes "
                    f"<t:{int(deadline.timestamp())}:R> unless someone writes here.",
                    "allowed_mentions": {"users": [ticket.discord_user_id]},
                },
            )
        except DiscordError as exc:
            services.ticket_error_record(ticket=ticket, error=exc)
            continue
        services.ticket_inactivity_warned(ticket=ticket)
        warned += 1
    return {"warned": warned, "closing": closed}


# --- closing -------------------------------------------------------------------------------------------------------


def ticket_close_run(*, ticket_id: int) -> str:
    """Save the whole history with its attachments, then delete the channel, then mark the ticket closed.

    Any failure before the transcript is committed leaves the channel and the ticket "closing" (the retry job tries
    again); the channel is deleted only after the transcript's transaction has committed.
    """
    ticket = selectors.ticket_get(ticket_id=ticket_id)
    if ticket is None or ticket.status != TicketStatus.CLOSING:
        return "nothing to do"
    discord = client()
    try:
        if ticket.discord_channel_id:
            _transcript_save(discord, ticket)
            discord.channel_delete(channel_id=ticket.discord_channel_id)
    except DiscordError as exc:
        if exc.code == UNKNOWN_CHANNEL and ticket.transcript_html:
            services.ticket_closed(ticket=ticket)  # deleted by a run that died before marking the ticket closed
            return "closed"
        services.ticket_close_attempt_failed(ticket=ticket, error=exc)
        logger.warning("Closing ticket %s failed, will retry: %s", ticket.pk, exc)
        return "retry"
    except MessageContentMissing as exc:  # nothing saved, nothing deleted: the channel is the only full copy
        services.ticket_close_attempt_failed(ticket=ticket, error=exc)
        alerts.discord_message_content_missing(detail=f"ticket #{ticket.pk}: {exc.hidden} of {exc.total} empty")
        logger.error("Closing ticket %s held: Discord hid the messages' text (Message Content intent)", ticket.pk)
        return "held"
    services.ticket_closed(ticket=ticket)
    return "closed"


def _transcript_save(discord: DiscordClient, ticket: Ticket) -> None:
    """Raises DiscordError, or MessageContentMissing before anything is stored."""
    history = discord.messages_history(channel_id=ticket.discord_channel_id)
    # The whole history is in hand: count messages and find the first response now, even if the activity job never
    # read this channel (a ticket closed within its 2 minutes). Already counted messages are skipped.
    ticket = services.ticket_activity_record(ticket=ticket, messages=history)
    check = content_check(history, bot_user_id=settings.DISCORD_APPLICATION_ID)
    if check.content_missing:
        raise MessageContentMissing(hidden=check.hidden, total=check.user_messages)
    if check.content_seen:
        alerts.discord_message_content_seen()
    stored = TicketAttachment.objects.filter(message__ticket=ticket).values_list("discord_attachment_id", "too_large")
    have = {attachment_id for attachment_id, _ in stored}
    files: dict[str, bytes | None] = {}
    for message in history:
        for attachment in message.get("attachments") or []:
            if attachment["id"] in have:
                continue
            if (attachment.get("size") or 0) > settings.DISCORD_ATTACHMENT_MAX_BYTES:
                files[attachment["id"]] = None
                continue
            # Fresh URLs come with every history read, so a retry after an expiry downloads again.
            files[attachment["id"]] = discord.attachment_download(
                url=attachment["url"], max_bytes=settings.DISCORD_ATTACHMENT_MAX_BYTES
            )
    kept = {attachment_id for attachment_id, too_large in stored if not too_large}
    kept |= {attachment_id for attachment_id, data in files.items() if data is not None}
    html = render_to_string(
        "support/transcript.html",
        {"ticket": ticket, "messages": _for_transcript(ticket, history, kept), "generated_at": timezone.now()},
    )
    services.ticket_transcript_store(ticket=ticket, messages=history, files=files, html=html)


def _for_transcript(ticket: Ticket, history: list[dict], kept: set[str]) -> list[dict]:
    names = markup.names_for_ticket(ticket, history)
    now = timezone.now()
    rendered = []
    for message in history:
        author = message.get("author") or {}
        rendered.append(
            {
                "id": message["id"],
                "author_name": author.get("global_name") or author.get("username") or author.get("id", "?"),
                "bot": bool(author.get("bot")),
                "sent_at": datetime.fromisoformat(message["timestamp"]),
                "content": markup.render(message.get("content") or "", names=names, now=now),
                "embeds": message.get("embeds") or [],
                "attachments": [
                    {
                        "id": a["id"],
                        "filename": a.get("filename", ""),
                        "size": a.get("size") or 0,
                        "kept": a["id"] in kept,
                        "is_image": (a.get("content_type") or "").startswith("image/"),
                    }
                    for a in message.get("attachments") or []
                ],
            }
        )
    return rendered


def ticket_feedback_request_run(*, ticket_id: int) -> str:
    """Ask the customer for a 1-5 rating in a direct message (the ticket's channel is gone)."""
    ticket = selectors.ticket_get(ticket_id=ticket_id)
    if ticket is None or ticket.status != TicketStatus.CLOSED or ticket.rated_at:
        return "nothing to do"
    discord = client()
    try:
        dm = discord.dm_channel_create(recipient_id=ticket.discord_user_id)
        discord.message_create(channel_id=dm["id"], payload=msg.rating_request(ticket))
    except DiscordError as exc:  # users can close their DMs to server members (50007); feedback is optional
        services.ticket_error_record(ticket=ticket, error=exc)
        return "not sent"
    return "sent"


def panel_publish() -> str:
    """Post the ticket panel in the support channel, or edit the one posted before."""
    discord = client()
    channel_id = settings.DISCORD_SUPPORT_CHANNEL_ID
    panel = SupportPanel.objects.filter(channel_id=channel_id).first()
    if panel:
        try:
            discord.message_edit(channel_id=channel_id, message_id=panel.message_id, payload=msg.panel_message())
            return "updated"
        except DiscordError as exc:
            if exc.status != 404:
                raise
    message = discord.message_create(channel_id=channel_id, payload=msg.panel_message())
    services.support_panel_record(channel_id=channel_id, message_id=message["id"])
    return "posted"
