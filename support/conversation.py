"""A ticket's conversation as a reader sees it: one rendering for the ticket page, the saved transcript and the
customer's copy, from Discord's message objects (read live, or rebuilt from the stored messages).

Each message becomes a dict with its author, time, content rendered by support/markup.py, embeds and attachments.
"""

from datetime import datetime

from django.utils import timezone

from . import markup
from .models import Ticket, TicketMessage


def _attachment(attachment: dict, kept: set[str] | None) -> dict:
    return {
        "id": attachment["id"],
        "filename": attachment.get("filename", ""),
        "size": attachment.get("size") or 0,
        # Stored copies (kept) are served from the admin; a live read links to Discord's signed CDN URL.
        "kept": kept is not None and attachment["id"] in kept,
        "url": attachment.get("url", ""),
        "is_image": (attachment.get("content_type") or "").startswith("image/"),
    }


def messages_for_display(
    ticket: Ticket, history: list[dict], *, kept: set[str] | None = None, now: datetime | None = None
) -> list[dict]:
    """Discord message objects (oldest first) as the page and the transcript show them. `kept`: the ids of the
    attachments stored in the database (None: a live read, attachments link to Discord)."""
    names = markup.names_for_ticket(ticket, history)
    now = now or timezone.now()
    rendered = []
    for message in history:
        author = message.get("author") or {}
        rendered.append(
            {
                "id": message["id"],
                "author_id": str(author.get("id", "")),
                "author_name": author.get("global_name") or author.get("username") or author.get("id", "?"),
                "bot": bool(author.get("bot")),
                "sent_at": datetime.fromisoformat(message["timestamp"]),
                "content": markup.render(message.get("content") or "", names=names, now=now),
                "embeds": message.get("embeds") or [],
                "attachments": [_attachment(a, kept) for a in message.get("attachments") or []],
            }
        )
    return rendered


def stored_as_discord(messages: list[TicketMessage]) -> tuple[list[dict], set[str]]:
    """Stored messages (with their attachments prefetched) in Discord's shape, and the ids of the files kept."""
    history, kept = [], set()
    for message in messages:
        attachments = []
        for attachment in message.attachments.all():
            attachments.append(
                {
                    "id": attachment.discord_attachment_id,
                    "filename": attachment.filename,
                    "size": attachment.size,
                    "content_type": attachment.content_type,
                }
            )
            if not attachment.too_large:
                kept.add(attachment.discord_attachment_id)
        history.append(
            {
                "id": message.discord_message_id,
                "author": {"id": message.author_id, "username": message.author_name, "bot": message.author_is_bot},
                "content": message.content,
                "embeds": message.embeds,
                "attachments": attachments,
                "timestamp": message.sent_at.isoformat(),
            }
        )
    return history, kept
