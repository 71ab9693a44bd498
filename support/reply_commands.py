"""The /reply slash command: staff type /reply in a ticket's channel, pick a saved reply from the autocomplete list
(Discord sends each keystroke as interaction type 4 and we answer type 8 with up to 25 choices), press enter, and the
rendered reply is posted in the channel as the command's answer. Two steps; both are HTTP interactions answered from
the database, far inside Discord's 3 seconds.
https://discord.com/developers/docs/interactions/application-commands#autocomplete
"""

from jinja2 import TemplateError

from . import discord_messages as msg
from . import saved_replies
from .category_roles import holds_staff_role
from .models import ACTIVE_STATUSES, Ticket, TicketStatus
from .reply_models import SavedReply, SavedReplyVia

APPLICATION_COMMAND_AUTOCOMPLETE = 4
AUTOCOMPLETE_RESULT = 8
MAX_CHOICES = 25  # Discord's limit per autocomplete answer

REPLY_COMMAND = "reply"
COMMANDS = [
    {
        "name": REPLY_COMMAND,
        "type": 1,
        "description": "Post a saved reply in this ticket, filled in for its customer",
        "contexts": [0],  # guild channels only
        "options": [
            {
                "type": 3,  # string
                "name": "reply",
                "description": "Start typing a saved reply's title",
                "required": True,
                "autocomplete": True,
            }
        ],
    }
]


def _ticket_in(channel_id: str) -> Ticket | None:
    if not channel_id:
        return None
    active = Ticket.objects.select_related("customer").filter(status__in=ACTIVE_STATUSES)  # the status index
    return active.filter(discord_channel_id=channel_id).first()


def _option(data: dict, name: str) -> dict:
    for option in data.get("options") or []:
        if isinstance(option, dict) and option.get("name") == name:
            return option
    return {}


def autocomplete(*, data: dict, roles: tuple[str, ...], channel_id: str) -> dict:
    """The saved replies matching what was typed, for staff in a ticket's channel (anyone else gets none)."""
    ticket = _ticket_in(channel_id)
    if ticket is None or not holds_staff_role(roles, ticket.category):
        return {"type": AUTOCOMPLETE_RESULT, "data": {"choices": []}}
    typed = str(_option(data, "reply").get("value") or "")[:100]
    replies = saved_replies.saved_replies_for(category=ticket.category, typed=typed)[:MAX_CHOICES]
    choices = [{"name": reply.title[:100], "value": str(reply.pk)} for reply in replies]
    return {"type": AUTOCOMPLETE_RESULT, "data": {"choices": choices}}


def _chosen(value: str, category: str) -> SavedReply | None:
    """The reply picked from the list (its id), or typed out in full (its exact title)."""
    replies = saved_replies.saved_replies_for(category=category)
    if value.isdigit():
        found = replies.filter(pk=int(value)).first()
        if found:
            return found
    return replies.filter(title__iexact=value.strip()).first()


def command(*, data: dict, interaction_id: str, roles: tuple[str, ...], channel_id: str, staff_name: str) -> dict:
    """Post the chosen reply in the ticket's channel as the command's answer (one use per interaction id)."""
    ticket = _ticket_in(channel_id)
    if ticket is None:
        return msg.ephemeral("Use /reply in a ticket's channel.")
    if not holds_staff_role(roles, ticket.category):
        return msg.ephemeral("Only support staff can post saved replies.")
    if ticket.status != TicketStatus.OPEN:
        return msg.ephemeral(f"Ticket #{ticket.pk} is {ticket.get_status_display().lower()}.")
    reply = _chosen(str(_option(data, "reply").get("value") or ""), ticket.category)
    if reply is None:
        return msg.ephemeral("Pick a saved reply from the list that shows while you type.")
    try:
        content = saved_replies.saved_reply_render(saved_reply=reply, ticket=ticket)
    except TemplateError as exc:
        return msg.ephemeral(f"“{reply.title}” could not be filled in: {str(exc)[:300]}. Fix it in the admin.")
    saved_replies.saved_reply_use_record(
        key=f"discord-interaction:{interaction_id}",
        saved_reply=reply,
        ticket=ticket,
        via=SavedReplyVia.DISCORD,
        staff_name=staff_name,
        content=content,
        posted=True,
    )
    return {"type": msg.MESSAGE, "data": {"content": content, "allowed_mentions": msg.NO_MENTIONS}}
