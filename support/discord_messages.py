"""The Discord payloads the support bot sends: panel, modals, the ticket's opening message, notices.

Components: https://discord.com/developers/docs/components/reference (1 action row, 2 button, 3 string select,
4 text input, 5 user select, 18 label). Modals: https://discord.com/developers/docs/interactions/receiving-and-
responding#interaction-response-object-modal (title and labels at most 45 characters, 1 to 5 top-level components).
"""

from .category_roles import staff_role_for
from .models import Ticket, TicketCategory

EPHEMERAL = 64
NO_MENTIONS: dict = {"parse": []}

# Interaction response types.
PONG, MESSAGE, DEFERRED_MESSAGE, UPDATE_MESSAGE, MODAL = 1, 4, 5, 7, 9

# custom_id values (https://discord.com/developers/docs/components/reference#anatomy-of-a-component-custom-id).
OPEN_BUTTON = "ticket:open"
OPEN_MODAL = "ticket:open-modal"

CATEGORY_HINTS = {
    TicketCategory.PURCHASE: "Plans, trials, buying a server",
    TicketCategory.SETUP: "Installing mods, configuring your server",
    TicketCategory.TECHNICAL: "Crashes, lag, errors, server down",
    TicketCategory.BILLING: "Invoices, charges, refunds, cancellations",
    TicketCategory.OTHER: "Anything else",
}


def label(text: str, component: dict, description: str = "") -> dict:
    assert len(text) <= 45, text  # Discord refuses the whole modal otherwise
    body = {"type": 18, "label": text, "component": component}
    if description:
        body["description"] = description[:100]
    return body


def button(custom_id: str, text: str, style: int = 2, emoji: str = "") -> dict:
    body = {"type": 2, "style": style, "label": text, "custom_id": custom_id}
    if emoji:
        body["emoji"] = {"name": emoji}
    return body


def row(*components: dict) -> dict:
    return {"type": 1, "components": list(components)}


def ephemeral(content: str, **extra) -> dict:
    return {"type": MESSAGE, "data": {"content": content, "flags": EPHEMERAL, "allowed_mentions": NO_MENTIONS, **extra}}


def panel_message() -> dict:
    return {
        "content": (
            "**Need help with your ModReady server?**\n"
            "Open a ticket and our support team answers in a private channel only you and staff can see."
        ),
        "components": [row(button(OPEN_BUTTON, "Open a ticket", style=1, emoji="🎫"))],
        "allowed_mentions": NO_MENTIONS,
    }


def open_ticket_modal() -> dict:
    """One modal: category (select in a Label), subject, description, email. Four top-level components."""
    options = [
        {"label": choice.label, "value": choice.value, "description": CATEGORY_HINTS[choice]}
        for choice in TicketCategory
    ]
    return {
        "type": MODAL,
        "data": {
            "custom_id": OPEN_MODAL,
            "title": "Open a support ticket",
            "components": [
                label("What is it about?", {"type": 3, "custom_id": "category", "options": options}),
                label(
                    "Subject",
                    {"type": 4, "custom_id": "subject", "style": 1, "min_length": 3, "max_length": 100},
                ),
                label(
                    "Describe the problem",
                    {"type": 4, "custom_id": "description", "style": 2, "max_length": 2000},
                ),
                label(
                    "Email of your ModReady account",
                    {"type": 4, "custom_id": "email", "style": 1, "max_length": 254, "required": False},
                    description="Only needed if we have not linked your Discord account yet.",
                ),
            ],
        },
    }


def close_modal(ticket: Ticket) -> dict:
    """The confirmation of a close: submitting the modal is the "yes"; the reason is optional."""
    return {
        "type": MODAL,
        "data": {
            "custom_id": f"ticket:{ticket.pk}:close-modal",
            "title": f"Close ticket #{ticket.pk}?",
            "components": [
                label(
                    "Reason (optional)",
                    {"type": 4, "custom_id": "reason", "style": 2, "max_length": 500, "required": False},
                    description="Submitting closes the ticket and deletes this channel after saving it.",
                )
            ],
        },
    }


def rating_modal(ticket: Ticket, rating: int) -> dict:
    return {
        "type": MODAL,
        "data": {
            "custom_id": f"ticket:{ticket.pk}:rate-modal:{rating}",
            "title": f"Your rating: {rating} of 5",
            "components": [
                label(
                    "Anything to add? (optional)",
                    {"type": 4, "custom_id": "comment", "style": 2, "max_length": 1000, "required": False},
                )
            ],
        },
    }


def rating_request(ticket: Ticket) -> dict:
    buttons = [button(f"ticket:{ticket.pk}:rate:{n}", "★" * n, style=2) for n in range(1, 6)]
    return {
        "content": (
            f"Your ModReady support ticket #{ticket.pk} ({ticket.subject}) is closed. How did we do? Pick 1 to 5 stars."
        ),
        "components": [row(*buttons)],
        "allowed_mentions": NO_MENTIONS,
    }


def ticket_buttons(ticket: Ticket) -> list[dict]:
    claim = (
        button(f"ticket:{ticket.pk}:unclaim", "Unclaim")
        if ticket.claimed_by_discord_id
        else button(f"ticket:{ticket.pk}:claim", "Claim", style=1)
    )
    return [
        row(
            claim,
            button(f"ticket:{ticket.pk}:transfer", "Transfer"),
            button(f"ticket:{ticket.pk}:close", "Close", style=4),
        )
    ]


def opening_message(ticket: Ticket, context: list[str]) -> dict:
    """The first message in the channel: mentions the staff role (the staff notification) and shows the CRM context."""
    role = staff_role_for(ticket.category)
    lines = [
        f"<@&{role}> new **{ticket.get_category_display()}** ticket from <@{ticket.discord_user_id}>",
        f"**{ticket.subject}**",
        ticket.description[:1500],
        "",
    ]
    if ticket.suggested_category:
        lines.append(f"Triage suggests **{ticket.get_suggested_category_display()}** ({ticket.triage_reason}).")
    lines.extend(context)
    if ticket.claimed_by_discord_id:
        lines.append(f"Claimed by <@{ticket.claimed_by_discord_id}> at {ticket.claimed_at:%Y-%m-%d %H:%M} UTC.")
    return {
        "content": "\n".join(lines)[:2000],
        "components": ticket_buttons(ticket),
        "allowed_mentions": {"roles": [role], "users": [ticket.discord_user_id]},
    }
