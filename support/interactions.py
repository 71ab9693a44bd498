"""Answers to Discord interactions: every answer is computed from the database within the 3-second limit.

Work that calls Discord's REST API (creating a channel, reading a history) is enqueued after commit and the
customer gets a deferred ephemeral answer (type 5) that the task edits. A modal is always a first answer.
https://discord.com/developers/docs/interactions/receiving-and-responding
"""

import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from . import discord_messages as msg
from . import reply_commands, selectors, services, suggestions
from .category_roles import holds_staff_role
from .models import TicketStatus

logger = logging.getLogger(__name__)

PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, APPLICATION_COMMAND_AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5


class MalformedInteraction(ValueError):
    """A signed payload that is not an interaction we can read (answered 400)."""


@dataclass(frozen=True)
class Actor:
    user_id: str
    name: str
    roles: tuple[str, ...]

    def is_staff_for(self, ticket) -> bool:
        """The global staff role, or the ticket's category role (support/category_roles.py)."""
        return holds_staff_role(self.roles, ticket.category)


def picked_member_is_staff(resolved: dict, user_id: str, category: str = "") -> bool:
    """Whether a user picked in a user select holds the staff role. In a guild, Discord sends the picked users'
    member objects (with their role ids) in `resolved.members`; no member object means not a member of the server
    (https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object-resolved-data-structure).
    """
    member = (resolved.get("members") or {}).get(user_id)
    if not isinstance(member, dict):
        return False
    return holds_staff_role([str(r) for r in member.get("roles") or []], category)


def _actor(payload: dict) -> Actor:
    member = payload.get("member") if isinstance(payload.get("member"), dict) else {}
    user = member.get("user") or payload.get("user")  # `user` alone in direct messages
    if not isinstance(user, dict) or not str(user.get("id", "")).isdigit():
        raise MalformedInteraction("no user")
    name = str(user.get("global_name") or user.get("username") or user["id"])
    roles = member.get("roles") or []
    if not isinstance(roles, list):
        raise MalformedInteraction("member.roles is not a list")
    return Actor(str(user["id"]), name[:100], tuple(str(r) for r in roles if isinstance(r, str | int)))


def modal_values(data: dict) -> dict[str, str | list[str]]:
    """`custom_id -> value` of a modal submit: Label components (type 18) and legacy action rows alike."""
    values: dict[str, str | list[str]] = {}
    for top in data.get("components") or []:
        if not isinstance(top, dict):
            raise MalformedInteraction("bad component")
        children = [top.get("component")] if top.get("type") == 18 else top.get("components") or []
        for child in children:
            if isinstance(child, dict) and isinstance(child.get("custom_id"), str):
                if "values" in child:
                    values[child["custom_id"]] = [str(v) for v in child.get("values") or []]
                else:
                    values[child["custom_id"]] = str(child.get("value") or "")
    return values


def handle(payload: object) -> dict:
    """The response body for one verified interaction. Raises MalformedInteraction."""
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), int):
        raise MalformedInteraction("not an interaction")
    if payload["type"] == PING:
        return {"type": msg.PONG}
    interaction_id = str(payload.get("id", ""))
    if not interaction_id.isdigit():
        raise MalformedInteraction("no id")
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    custom_id = str(data.get("custom_id") or data.get("name") or "")
    actor = _actor(payload)
    channel_id = str(payload.get("channel_id") or "")
    if payload["type"] == APPLICATION_COMMAND_AUTOCOMPLETE:  # a read per keystroke: answered, not recorded
        return reply_commands.autocomplete(data=data, roles=actor.roles, channel_id=channel_id)
    if not services.interaction_record(
        interaction_id=interaction_id,
        interaction_type=payload["type"],
        custom_id=custom_id,
        discord_user_id=actor.user_id,
    ):
        return msg.ephemeral("Already handled.")
    if payload["type"] == MESSAGE_COMPONENT:
        return _component(custom_id, data, actor, token=str(payload.get("token", "")))
    if payload["type"] == MODAL_SUBMIT:
        return _modal_submit(custom_id, data, actor, token=str(payload.get("token", "")), interaction_id=interaction_id)
    if payload["type"] == APPLICATION_COMMAND and custom_id == reply_commands.REPLY_COMMAND:
        return reply_commands.command(
            data=data, interaction_id=interaction_id, roles=actor.roles, channel_id=channel_id, staff_name=actor.name
        )
    if payload["type"] == APPLICATION_COMMAND:
        return msg.ephemeral("Use the “Open a ticket” button in the support channel.")
    raise MalformedInteraction(f"unknown interaction type {payload['type']}")


def _ticket_action(custom_id: str) -> tuple[int, str, str]:
    parts = custom_id.split(":")
    if len(parts) < 3 or parts[0] != "ticket" or not parts[1].isdigit():
        raise MalformedInteraction(f"unknown custom_id {custom_id!r}")
    return int(parts[1]), parts[2], parts[3] if len(parts) > 3 else ""


def _component(custom_id: str, data: dict, actor: Actor, *, token: str) -> dict:
    suggestion_answer = suggestions.button(custom_id=custom_id, user_id=actor.user_id, token=token)
    if suggestion_answer is not None:
        return suggestion_answer
    if custom_id == msg.OPEN_BUTTON:
        refusal = services.open_refusal(discord_user_id=actor.user_id)
        return msg.ephemeral(refusal) if refusal else msg.open_ticket_modal()
    ticket_id, action, argument = _ticket_action(custom_id)
    ticket = selectors.ticket_get(ticket_id=ticket_id)
    if ticket is None:
        return msg.ephemeral("This ticket no longer exists.")
    if action.startswith("rate"):
        if actor.user_id != ticket.discord_user_id or ticket.status != TicketStatus.CLOSED:
            return msg.ephemeral("Only the customer can rate a closed ticket.")
        if not argument.isdigit() or not 1 <= int(argument) <= 5:
            raise MalformedInteraction("bad rating")
        return msg.rating_modal(ticket, int(argument))
    if ticket.status != TicketStatus.OPEN:
        return msg.ephemeral(f"Ticket #{ticket.pk} is {ticket.get_status_display().lower()}.")
    if action == "close":
        if not actor.is_staff_for(ticket) and actor.user_id != ticket.discord_user_id:
            return msg.ephemeral("Only staff or the customer can close this ticket.")
        return msg.close_modal(ticket)
    if not actor.is_staff_for(ticket):
        return msg.ephemeral("Only support staff can do that.")
    context = selectors.ticket_customer_context(ticket=ticket)
    if action == "claim":
        ticket = services.ticket_claim(ticket=ticket, discord_user_id=actor.user_id, name=actor.name)
        return {"type": msg.UPDATE_MESSAGE, "data": msg.opening_message(ticket, context)}
    if action == "unclaim":
        ticket = services.ticket_unclaim(ticket=ticket)
        return {"type": msg.UPDATE_MESSAGE, "data": msg.opening_message(ticket, context)}
    if action == "transfer":
        picker = {"type": 5, "custom_id": f"ticket:{ticket.pk}:transfer-to", "placeholder": "Transfer to…"}
        return msg.ephemeral(f"Transfer ticket #{ticket.pk} to:", components=[msg.row(picker)])
    if action == "transfer-to":
        values = data.get("values") or []
        if not values:
            raise MalformedInteraction("no user picked")
        target = str(values[0])
        resolved = data.get("resolved") if isinstance(data.get("resolved"), dict) else {}
        user = (resolved.get("users") or {}).get(target) or {}
        name = str(user.get("global_name") or user.get("username") or target)
        if not picked_member_is_staff(resolved, target, ticket.category):
            # The channel is visible to the staff role only: anyone else would hold a ticket they cannot open.
            return msg.ephemeral(f"{name} is not in the support team, so they cannot take ticket #{ticket.pk}.")
        services.ticket_transfer(ticket=ticket, discord_user_id=target, name=name)
        return {
            "type": msg.MESSAGE,
            "data": {
                "content": f"Ticket transferred to <@{target}> by <@{actor.user_id}>.",
                "allowed_mentions": {"users": [target]},
            },
        }
    raise MalformedInteraction(f"unknown action {action!r}")


def _modal_submit(custom_id: str, data: dict, actor: Actor, *, token: str, interaction_id: str) -> dict:
    values = modal_values(data)
    if custom_id == msg.OPEN_MODAL:
        category = values.get("category") or [""]
        category = category[0] if isinstance(category, list) and category else str(category)
        email = str(values.get("email") or "").strip()
        if email:
            try:
                validate_email(email)
            except ValidationError:
                return msg.ephemeral(f"“{email[:100]}” is not an email address; please try again.")
        form = {
            "discord_user_id": actor.user_id,
            "username": actor.name,
            "category": category,
            "subject": str(values.get("subject") or "")[:200],
            "description": str(values.get("description") or "")[:4000],
            "email": email,
        }
        offer = suggestions.offer(interaction_id=interaction_id, **form)  # public saved replies first, if any match
        if offer is not None:
            return offer
        result = services.ticket_open_request(**form, interaction_token=token)
        if result.ticket is None:
            return msg.ephemeral(result.refusal)
        return {"type": msg.DEFERRED_MESSAGE, "data": {"flags": msg.EPHEMERAL}}
    ticket_id, action, argument = _ticket_action(custom_id)
    ticket = selectors.ticket_get(ticket_id=ticket_id)
    if ticket is None:
        return msg.ephemeral("This ticket no longer exists.")
    if action == "close-modal":
        if not actor.is_staff_for(ticket) and actor.user_id != ticket.discord_user_id:
            return msg.ephemeral("Only staff or the customer can close this ticket.")
        if ticket.status != TicketStatus.OPEN:
            return msg.ephemeral(f"Ticket #{ticket.pk} is already {ticket.get_status_display().lower()}.")
        reason = str(values.get("reason") or "")
        services.ticket_close_request(ticket=ticket, by_discord_id=actor.user_id, by_name=actor.name, reason=reason)
        return {
            "type": msg.MESSAGE,
            "data": {
                "content": f"<@{actor.user_id}> closed this ticket. Saving the transcript, then this channel goes.",
                "allowed_mentions": msg.NO_MENTIONS,
            },
        }
    if action == "rate-modal":
        if not argument.isdigit():
            raise MalformedInteraction("bad rating")
        rating = int(argument)
        if not services.ticket_rate(
            ticket=ticket, discord_user_id=actor.user_id, rating=rating, comment=str(values.get("comment") or "")
        ):
            return msg.ephemeral("Only the customer can rate this ticket.")
        return {
            "type": msg.UPDATE_MESSAGE,
            "data": {"content": f"Thanks for rating ticket #{ticket.pk}: {'★' * rating}", "components": []},
        }
    raise MalformedInteraction(f"unknown modal {custom_id!r}")
