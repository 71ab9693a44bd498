"""The ticket page's "insert a saved reply": a plain GET form lists the replies of the ticket's category; choosing one
reloads the page with the reply filled in for the customer in the reply box, where staff read or edit it and send it
with the page's own reply button (its idempotency key and name). Two steps, no script."""

from jinja2 import TemplateError

from .models import Ticket
from .saved_replies import saved_replies_for, saved_reply_render


def saved_reply_page_context(*, ticket: Ticket, chosen: str = "") -> dict:
    """`saved_replies` (id, title) for the select; `reply_prefill` (the chosen reply rendered for this ticket) or
    `saved_reply_error` (why it could not be filled in). An unknown or foreign id fills in nothing."""
    replies = list(saved_replies_for(category=ticket.category).only("pk", "title", "body", "category"))
    context: dict = {"saved_replies": [(r.pk, r.title) for r in replies], "reply_prefill": "", "saved_reply_error": ""}
    picked = next((r for r in replies if chosen.isdigit() and r.pk == int(chosen)), None)
    if picked is None:
        return context
    try:
        context["reply_prefill"] = saved_reply_render(saved_reply=picked, ticket=ticket)
    except TemplateError as exc:
        context["saved_reply_error"] = f"“{picked.title}” could not be filled in: {exc}"
    return context
