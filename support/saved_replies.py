"""Saved replies: rendered for a ticket in the email templates' sandbox with the same limits (automations.rendering
.render_text; nothing is copied), filled from the CRM only when the ticket's Discord user is proven to be the
customer (support/identity.py), and posted once per key.

Public names, for the ticket page and Discord's /reply:
- `saved_reply_render(*, saved_reply, ticket) -> str`: the text as it would be posted (raises jinja2.TemplateError);
- `saved_reply_post(*, saved_reply, ticket, staff_name, key) -> SavedReplyUse`: render and post it in the ticket's
  channel after commit (support/saved_reply_workflows.py); the same key posts once;
- `saved_replies_for(*, category, typed="")`: the replies offered for a ticket's category, best matches first.
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from jinja2 import TemplateError

from automations.render_context import customer_context, links_context, sample_contexts, subscription_context
from automations.rendering import render_text, text_compile_errors
from billing.card_update_links import card_update_url

from .models import Ticket
from .reply_models import DISCORD_MESSAGE_MAX, SavedReply, SavedReplyUse, SavedReplyVia

# What a reply sees of a customer it may not name: a ticket whose Discord user is not proven to be a customer.
UNLINKED_CUSTOMER = {
    "name": "",
    "first_name": "there",
    "email": "",
    "vip": False,
    "lifecycle_stage": "",
    "promo_code": "",
    "discord_invite_link": "",
}
CONTEXT_KEYS = ("customer", "subscription", "card_update_url", *links_context().keys())


def proven_customer(ticket: Ticket):
    """The ticket's customer when the link is proven (the same rule as the opening message's CRM context)."""
    customer = ticket.customer
    if customer is None or ticket.customer_link != "discord" or customer.discord_user_id != ticket.discord_user_id:
        return None
    return customer


def reply_context(*, customer) -> dict[str, Any]:
    """The variables of a saved reply: those of an email template, less what only an email has (event, unsubscribe)."""
    if customer is None:
        return {"customer": dict(UNLINKED_CUSTOMER), "subscription": None, "card_update_url": "", **links_context()}
    return {
        "customer": customer_context(customer),
        "subscription": subscription_context(customer=customer, event_payload={}),
        "card_update_url": card_update_url(customer=customer),
        **links_context(),
    }


def saved_reply_body_errors(*, body: str, title: str = "") -> str:
    """Why a body cannot be saved ("" when it can): it must render within the limits for varied sample customers
    (one without a name, a subscription or a card link) and fit a Discord message."""
    samples = [{key: sample.get(key) for key in CONTEXT_KEYS} for sample in sample_contexts()]
    samples.append(reply_context(customer=None))
    return text_compile_errors(source=body, name=title, max_length=DISCORD_MESSAGE_MAX, contexts=samples)


def _render(saved_reply: SavedReply, context: dict[str, Any]) -> str:
    text = render_text(
        source=saved_reply.body, context=context, name=saved_reply.title, max_length=DISCORD_MESSAGE_MAX, part="reply"
    )
    if not text:
        raise TemplateError(f"saved reply {saved_reply.title!r} renders empty")
    return text


def saved_reply_render_for(*, saved_reply: SavedReply, customer) -> str:
    """The reply filled in for `customer` (None: a Discord user not proven to be a customer)."""
    return _render(saved_reply, reply_context(customer=customer))


def saved_reply_preview(*, saved_reply: SavedReply) -> str:
    """The reply as the sample customer of the email previews would read it. Raises jinja2.TemplateError."""
    sample = sample_contexts()[0]
    return _render(saved_reply, {key: sample.get(key) for key in CONTEXT_KEYS})


def saved_reply_render(*, saved_reply: SavedReply, ticket: Ticket) -> str:
    """The reply as it would be posted in this ticket. Raises jinja2.TemplateError (limits included)."""
    return saved_reply_render_for(saved_reply=saved_reply, customer=proven_customer(ticket))


def saved_replies_for(*, category: str, typed: str = "", public_only: bool = False) -> QuerySet[SavedReply]:
    """Replies for a category (its own and those for every category); `typed` narrows by title or keywords."""
    replies = SavedReply.objects.filter(Q(category="") | Q(category=category))
    if public_only:
        replies = replies.filter(public=True)
    for word in typed.split()[:5]:
        replies = replies.filter(Q(title__icontains=word) | Q(keywords__icontains=word))
    return replies.order_by("title")


@transaction.atomic
def saved_reply_use_record(
    *, key: str, saved_reply: SavedReply, ticket: Ticket, via: str, staff_name: str, content: str, posted: bool
) -> tuple[SavedReplyUse, bool]:
    """One row per key: (the use, whether it is new). The unique key makes a second click or delivery a no-op."""
    try:
        with transaction.atomic():
            use = SavedReplyUse.objects.create(
                key=key[:120],
                saved_reply=saved_reply,
                ticket=ticket,
                via=via,
                staff_name=staff_name[:150],
                content=content,
                posted_at=timezone.now() if posted else None,
            )
    except IntegrityError:
        return SavedReplyUse.objects.get(key=key[:120]), False
    return use, True


@transaction.atomic
def saved_reply_post(*, saved_reply: SavedReply, ticket: Ticket, staff_name: str, key: str) -> SavedReplyUse:
    """Render the reply for the ticket and post it in its channel (after commit, in a task). `key` comes from the
    caller's own id for this action (a form's token, an interaction id): the same key never posts twice. Raises
    jinja2.TemplateError when the reply cannot be rendered; nothing is recorded then."""
    from django_q.tasks import async_task

    content = saved_reply_render(saved_reply=saved_reply, ticket=ticket)
    use, new = saved_reply_use_record(
        key=f"admin:{key}",
        saved_reply=saved_reply,
        ticket=ticket,
        via=SavedReplyVia.ADMIN,
        staff_name=staff_name,
        content=content,
        posted=False,
    )
    if new:
        transaction.on_commit(
            lambda: async_task(
                "support.saved_reply_workflows.saved_reply_post_task", use.pk, task_name=f"saved-reply:{use.pk}"
            )
        )
    return use


def saved_reply_posted(*, use: SavedReplyUse, message_id: str) -> None:
    SavedReplyUse.objects.filter(pk=use.pk).update(
        posted_at=timezone.now(), discord_message_id=message_id, last_error=""
    )


def saved_reply_post_failed(*, use: SavedReplyUse, error: Exception) -> None:
    SavedReplyUse.objects.filter(pk=use.pk).update(last_error=str(error)[:500])
