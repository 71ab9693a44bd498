"""Saved replies and the /reply command that call Discord's REST API, run from tasks or the panel command."""

import logging

from django.conf import settings

from integrations.discord import DiscordError

from . import reply_commands, saved_replies
from .models import TicketStatus
from .reply_models import SavedReplyUse
from .workflows import client

logger = logging.getLogger(__name__)


def saved_reply_post_task(use_id: int) -> str:
    """Post a saved reply chosen on the ticket page. Safe to run twice: a posted use is not posted again, and the
    nonce (our use's id, enforced by Discord for a few minutes) makes a repeat of a POST whose answer was lost return
    the message already made."""
    use = SavedReplyUse.objects.select_related("ticket").filter(pk=use_id).first()
    if use is None or use.posted_at:
        return "nothing to do"
    ticket = use.ticket
    if ticket.status != TicketStatus.OPEN or not ticket.discord_channel_id:
        saved_replies.saved_reply_post_failed(use=use, error=RuntimeError(f"ticket is {ticket.status}"))
        return "ticket not open"
    payload = {
        "content": use.content,
        "allowed_mentions": {"parse": []},
        "nonce": f"reply-{use.pk}",
        "enforce_nonce": True,
    }
    try:
        message = client().message_create(channel_id=ticket.discord_channel_id, payload=payload)
    except DiscordError as exc:
        saved_replies.saved_reply_post_failed(use=use, error=exc)
        logger.warning("Posting saved reply use %s failed: %s", use.pk, exc)
        return "failed"
    saved_replies.saved_reply_posted(use=use, message_id=message["id"])
    return "posted"


def commands_register() -> list[str]:
    """Install the bot's slash commands in the guild (a bulk overwrite: running it again changes nothing)."""
    commands = client().guild_commands_overwrite(guild_id=settings.DISCORD_GUILD_ID, commands=reply_commands.COMMANDS)
    return [command["name"] for command in commands]
