"""Before a ticket opens: the ticket form's answer offers the public saved replies that match the chosen category and
the words typed, with "This solved it" and "I still need help" buttons. "Solved" records a ticket avoided;
"still need help" opens the ticket from the form as it was typed (support.services.ticket_open_request, with every
guard rail), so the customer types nothing twice. With no match the ticket opens at once, as before.
"""

import re

from django.db import IntegrityError, transaction
from django.utils import timezone
from jinja2 import TemplateError

from . import discord_messages as msg
from . import saved_replies, selectors, services
from .models import TicketCategory
from .reply_models import PanelSuggestion, SavedReply, SuggestionOutcome

PREFIX = "suggest"
MAX_OFFERED = 3
EMBED_DESCRIPTION_MAX = 4096  # https://discord.com/developers/docs/resources/message#embed-object-embed-limits
_WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset((
    "the", "and", "for", "with", "that", "this", "from", "have", "has", "had", "not", "but", "are", "was", "were",
    "you", "your", "our", "can", "cant", "could", "would", "will", "into", "about", "just", "when", "what", "why",
    "how", "does", "did", "get", "got", "its", "it's", "there", "their", "them", "then", "than", "also", "any",
    "all",
))  # fmt: skip


def _words(text: str) -> set[str]:
    """Lowercase words of three letters or more, with a plural's s dropped, minus common words."""
    return {w.removesuffix("s") for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in STOP_WORDS}


def matching_public_replies(*, category: str, subject: str, description: str) -> list[SavedReply]:
    """Public replies of the category (or of every category) sharing a word with what was typed, in their title or
    keywords; most words shared first, at most MAX_OFFERED."""
    typed = _words(subject) | _words(description)
    if not typed:
        return []
    scored = []
    for reply in saved_replies.saved_replies_for(category=category, public_only=True):
        shared = len(typed & _words(f"{reply.title} {reply.keywords}"))
        if shared:
            scored.append((-shared, reply.title, reply))
    return [reply for *_, reply in sorted(scored, key=lambda s: s[:2])[:MAX_OFFERED]]


def _answer(suggestion: PanelSuggestion, rendered: list[tuple[SavedReply, str]]) -> dict:
    embeds = [{"title": reply.title[:256], "description": text[:EMBED_DESCRIPTION_MAX]} for reply, text in rendered]
    buttons = [
        msg.button(f"{PREFIX}:{suggestion.pk}:solved:{reply.pk}", f"This solved it: {reply.title}"[:80], style=3)
        for reply, _ in rendered
    ]
    buttons.append(msg.button(f"{PREFIX}:{suggestion.pk}:help", "I still need help", style=1))
    return msg.ephemeral(
        "Before we open your ticket: these answers may already solve it.", embeds=embeds, components=[msg.row(*buttons)]
    )


def offer(
    *, interaction_id: str, discord_user_id: str, username: str, category: str, subject: str, description: str,
    email: str,
) -> dict | None:  # fmt: skip
    """The form's answer offering matching public replies, or None (nothing matches: open the ticket as before).
    A form that would be refused anyway (a cap, a cooldown, an open ticket there) is not offered anything."""
    if category not in TicketCategory.values or services.open_refusal(
        discord_user_id=discord_user_id, category=category
    ):
        return None
    customer = selectors.customer_by_discord_id(discord_user_id=discord_user_id)  # proven links only
    rendered = []
    for reply in matching_public_replies(category=category, subject=subject, description=description):
        try:
            rendered.append((reply, saved_replies.saved_reply_render_for(saved_reply=reply, customer=customer)))
        except TemplateError:
            continue  # a broken reply is not offered; the form still works
    if not rendered:
        return None
    suggestion = panel_suggestion_record(
        interaction_id=interaction_id,
        discord_user_id=discord_user_id,
        username=username,
        category=category,
        subject=subject,
        description=description,
        email=email,
        offered=[reply for reply, _ in rendered],
    )
    if suggestion is None:
        return msg.ephemeral("Already handled.")
    return _answer(suggestion, rendered)


@transaction.atomic
def panel_suggestion_record(*, interaction_id: str, offered: list[SavedReply], **form) -> PanelSuggestion | None:
    """Keep the form and what was offered; None when this submit was recorded before."""
    try:
        with transaction.atomic():
            suggestion = PanelSuggestion.objects.create(
                interaction_id=interaction_id,
                discord_user_id=form["discord_user_id"],
                discord_username=form["username"][:100],
                category=form["category"],
                subject=form["subject"][:200],
                description=form["description"],
                email=form["email"][:254],
            )
    except IntegrityError:
        return None
    suggestion.offered.set(offered)
    return suggestion


@transaction.atomic
def panel_suggestion_solved(*, suggestion_id: int, discord_user_id: str, saved_reply_id: int) -> bool:
    """Record a ticket avoided; False when it is not this user's, not pending, or that reply was not offered."""
    suggestion = PanelSuggestion.objects.select_for_update().filter(pk=suggestion_id).first()
    if suggestion is None or suggestion.discord_user_id != discord_user_id:
        return False
    if suggestion.outcome != SuggestionOutcome.PENDING or not suggestion.offered.filter(pk=saved_reply_id).exists():
        return False
    suggestion.outcome = SuggestionOutcome.SOLVED
    suggestion.solved_by_id = saved_reply_id
    suggestion.decided_at = timezone.now()
    suggestion.save(update_fields=["outcome", "solved_by", "decided_at"])
    return True


@transaction.atomic
def panel_suggestion_open(*, suggestion_id: int, discord_user_id: str, interaction_token: str) -> str:
    """Open the ticket from the kept form ("" when it opens; otherwise what to tell the customer)."""
    suggestion = PanelSuggestion.objects.select_for_update().filter(pk=suggestion_id).first()
    if suggestion is None or suggestion.discord_user_id != discord_user_id:
        return "This form is not yours."
    if suggestion.outcome != SuggestionOutcome.PENDING:
        return "You already answered this one."
    result = services.ticket_open_request(
        discord_user_id=discord_user_id,
        username=suggestion.discord_username,
        category=suggestion.category,
        subject=suggestion.subject,
        description=suggestion.description,
        email=suggestion.email,
        interaction_token=interaction_token,
    )
    if result.ticket is None:
        return result.refusal or "No ticket was opened."
    suggestion.outcome = SuggestionOutcome.OPENED
    suggestion.ticket = result.ticket
    suggestion.decided_at = timezone.now()
    suggestion.save(update_fields=["outcome", "ticket", "decided_at"])
    return ""


def _update(content: str) -> dict:
    return {
        "type": msg.UPDATE_MESSAGE,
        "data": {"content": content, "embeds": [], "components": [], "allowed_mentions": msg.NO_MENTIONS},
    }


def button(*, custom_id: str, user_id: str, token: str) -> dict | None:
    """The answer to a suggestion button, or None when `custom_id` is not one."""
    parts = custom_id.split(":")
    if len(parts) < 3 or parts[0] != PREFIX or not parts[1].isdigit():
        return None
    suggestion_id = int(parts[1])
    if parts[2] == "solved" and len(parts) == 4 and parts[3].isdigit():
        if not panel_suggestion_solved(
            suggestion_id=suggestion_id, discord_user_id=user_id, saved_reply_id=int(parts[3])
        ):
            return msg.ephemeral("You already answered this one.")
        return _update("Glad that helped! No ticket was opened. If you need us later, press “Open a ticket” again.")
    if parts[2] == "help":
        problem = panel_suggestion_open(suggestion_id=suggestion_id, discord_user_id=user_id, interaction_token=token)
        if problem:
            return msg.ephemeral(problem)
        return _update("Opening your ticket…")
    return None


def tickets_avoided_count() -> int:
    return PanelSuggestion.objects.filter(outcome=SuggestionOutcome.SOLVED).count()
