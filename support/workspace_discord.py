"""The ticket page's calls to Discord: reading the channel for the conversation (cached briefly), and posting a reply
under the staff member's name exactly once.

Reading: one history read (100 messages a call, `before=` pages) when the page opens, kept in the default cache for
DISCORD_CONVERSATION_CACHE_SECONDS; the page's Refresh reads again. When Discord cannot be read the page shows the
stored messages with a notice (support/admin_ticket_page.py).

Posting: the bot posts "**Name (Support):** text" (the bot's messages keep their content without the Message Content
intent, and the customer sees who answered) with the nonce `ticket-post-<id>` and `enforce_nonce`, so Discord answers a
repeat with the message it already made: the client retries a 5xx or a lost answer under the same nonce. The retry job
looks in the channel first, since Discord keeps nonces only for a few minutes.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from integrations.discord import DiscordClient, DiscordError

from . import discord_messages as msg
from . import workspace
from .models import Ticket, TicketStatus
from .workspace_models import PostKind, PostStatus, TicketPost

logger = logging.getLogger(__name__)

POST_MAX_ATTEMPTS = 5  # runs of the send (each with the client's own retries), then the reply shows "not sent"


def client() -> DiscordClient:
    return DiscordClient.from_settings()


# --- reading ---------------------------------------------------------------------------------------------------------


@dataclass
class ChannelRead:
    messages: list[dict] = field(default_factory=list)
    read_at: datetime | None = None
    error: str = ""  # Discord could not be read: the page falls back to the stored messages
    cached: bool = False


def _cache_key(ticket: Ticket) -> str:
    return f"support:conversation:{ticket.pk}:{ticket.discord_channel_id}"


def conversation_forget(ticket: Ticket) -> None:
    cache.delete(_cache_key(ticket))


def conversation_read(ticket: Ticket, *, refresh: bool = False) -> ChannelRead:
    """The channel's whole history, oldest first, from the cache unless `refresh` or it is older than the setting."""
    key = _cache_key(ticket)
    if not refresh:
        hit = cache.get(key)
        if hit is not None:
            return ChannelRead(messages=hit["messages"], read_at=hit["read_at"], cached=True)
    try:
        messages = client().messages_history(channel_id=ticket.discord_channel_id)
    except ImproperlyConfigured as exc:  # Discord is not set up here (e.g. a copy of production data locally)
        return ChannelRead(error=str(exc))
    except DiscordError as exc:
        logger.warning("Reading ticket %s's channel failed: %s", ticket.pk, exc)
        return ChannelRead(error=str(exc))
    read_at = timezone.now()
    cache.set(key, {"messages": messages, "read_at": read_at}, settings.DISCORD_CONVERSATION_CACHE_SECONDS)
    return ChannelRead(messages=messages, read_at=read_at)


# --- posting a reply -------------------------------------------------------------------------------------------------


def reply_payload(post: TicketPost) -> dict:
    """What the customer sees: the staff member's name, then the text. Mentions only ever ping the customer."""
    return {
        "content": f"**{post.author_name} (Support):** {post.content}",
        "allowed_mentions": {"parse": [], "users": [post.ticket.discord_user_id]},
    }


def _already_posted(discord: DiscordClient, post: TicketPost) -> dict | None:
    """The reply if an earlier attempt made it (its answer was lost, longer ago than Discord keeps nonces)."""
    after = snowflake_before(post.created_at)
    wanted = reply_payload(post)["content"]
    for message in discord.messages_after(channel_id=post.ticket.discord_channel_id, after=after):
        author = message.get("author") or {}
        if author.get("id") == settings.DISCORD_APPLICATION_ID and message.get("content") == wanted:
            return message
    return None


def snowflake_before(moment: datetime) -> str:
    """A message id from 5 seconds before `moment`: `after=` it, a channel read finds what was posted since."""
    discord_epoch_ms = 1420070400000
    ms = int((moment - timedelta(seconds=5)).timestamp() * 1000)
    return str(max(0, ms - discord_epoch_ms) << 22)


def ticket_post_send_run(*, post_id: int, look_first: bool = False) -> str:
    """Post one reply; safe to run twice (the row's status, then Discord's nonce, then a look at the channel)."""
    post = TicketPost.objects.select_related("ticket").filter(pk=post_id, kind=PostKind.REPLY).first()
    if post is None or post.status != PostStatus.PENDING:
        return "nothing to do"
    ticket = post.ticket
    if ticket.status != TicketStatus.OPEN or not ticket.discord_channel_id:
        workspace.ticket_post_failed(post=post, error=Exception("the ticket closed before it was sent"), final=True)
        return "ticket closed"
    discord = client()
    try:
        message = _already_posted(discord, post) if look_first else None
        message = message or discord.message_create_once(
            channel_id=ticket.discord_channel_id, payload=reply_payload(post), nonce=post.nonce
        )
    except DiscordError as exc:
        final = (not exc.is_retryable) or post.attempts + 1 >= POST_MAX_ATTEMPTS
        workspace.ticket_post_failed(post=post, error=exc, final=final)
        logger.warning("Reply %s on ticket %s not sent (final: %s): %s", post.pk, ticket.pk, final, exc)
        return "failed" if final else "retry"
    sent_at = datetime.fromisoformat(message["timestamp"]) if message.get("timestamp") else timezone.now()
    workspace.ticket_post_sent(post=post, message_id=str(message["id"]), sent_at=sent_at)
    conversation_forget(ticket)
    return "sent"


def posts_retry_run(*, now: datetime | None = None) -> int:
    """Replies still "sending" a minute after they were written (a failed attempt, a lost task): look, then send."""
    now = now or timezone.now()
    due = TicketPost.objects.filter(
        kind=PostKind.REPLY, status=PostStatus.PENDING, created_at__lte=now - timedelta(minutes=1)
    ).values_list("pk", flat=True)
    for post_id in list(due):
        ticket_post_send_run(post_id=post_id, look_first=True)
    return len(due)


def close_request_message(*, ticket: Ticket, asked_by: str, reason: str, due_at: datetime, request_id: int) -> dict:
    """The question in the channel, with the customer's two buttons (answered over HTTP interactions)."""
    because = f" ({reason})" if reason else ""
    return {
        "content": (
            f"<@{ticket.discord_user_id}> {asked_by} from support thinks this ticket is solved{because}. Can we close "
            f"it? Without an answer it closes <t:{int(due_at.timestamp())}:R>; writing here keeps it open."
        ),
        "components": [
            msg.row(
                msg.button(f"ticket:{ticket.pk}:close-confirm:{request_id}", "Yes, close it", style=3),
                msg.button(f"ticket:{ticket.pk}:close-keep:{request_id}", "No, keep it open", style=2),
            )
        ],
        "allowed_mentions": {"parse": [], "users": [ticket.discord_user_id]},
    }
