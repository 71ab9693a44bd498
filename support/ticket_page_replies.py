"""The ticket page's "insert a saved reply": a plain GET form lists the replies of the ticket's category; choosing one
reloads the page with the reply filled in for the customer in the reply box, where staff read or edit it and send it
with the page's own reply button (its idempotency key and name). Two steps, no script."""

from jinja2 import TemplateError

from .models import Ticket
from .reply_models import SavedReplyVia
from .saved_replies import saved_replies_for, saved_reply_render, saved_reply_use_record


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


def saved_reply_use_from_page(*, ticket: Ticket, post, saved_reply_id: int) -> None:
    """Count a reply sent from the page after a saved reply filled its box as a use of that reply (what staff sent,
    edited or not). Keyed by the post, so a resubmitted form counts once; a reply of another category counts not."""
    picked = saved_replies_for(category=ticket.category).filter(pk=saved_reply_id).first()
    if picked is None:
        return
    saved_reply_use_record(
        key=f"page:{post.pk}",
        saved_reply=picked,
        ticket=ticket,
        via=SavedReplyVia.ADMIN,
        staff_name=post.author_name,
        content=post.content,
        posted=False,
    )
