"""What the ticket page shows (reads only): the conversation as the customer sees it, with the page's own replies
and internal notes woven in, the staff actions taken, and the customer's CRM card.

The conversation of an open ticket is read from its channel (support/workspace_discord.py: one history read, cached
briefly); when Discord cannot be read, and for a closed ticket, it comes from the stored messages. Replies sent from
the page are Discord messages like any other and are shown once, marked with who sent them; replies not sent yet and
internal notes come from our table, notes marked internal.
"""

from dataclasses import dataclass, field
from datetime import datetime

from automations.customer_selectors import customer_emails_recent
from billing.customer_selectors import failed_payment
from billing.selectors import subscription_current_for_customer
from customers.models import Customer

from . import selectors, workspace_discord
from .conversation import messages_for_display, stored_as_discord
from .models import Ticket, TicketStatus
from .workspace_models import (
    CloseRequestStatus,
    PostKind,
    PostStatus,
    TicketAuditEntry,
    TicketCloseRequest,
    TranscriptDelivery,
)

EMAILS_SHOWN = 5
LIVE_STATUSES = (TicketStatus.OPEN, TicketStatus.CLOSING)


@dataclass
class Conversation:
    entries: list[dict] = field(default_factory=list)  # oldest first
    source: str = "none"  # "discord", "stored" or "none"
    read_at: datetime | None = None
    cached: bool = False
    notice: str = ""  # said plainly above the conversation (Discord down, nothing stored yet)


def _history(ticket: Ticket, refresh: bool) -> tuple[list[dict], Conversation]:
    """The messages to show, as rendered entries, and where they came from."""
    if ticket.status in LIVE_STATUSES and ticket.discord_channel_id:
        read = workspace_discord.conversation_read(ticket, refresh=refresh)
        if not read.error:
            shown = messages_for_display(ticket, read.messages)
            return shown, Conversation(source="discord", read_at=read.read_at, cached=read.cached)
        notice = (
            "Discord could not be read just now, so this shows the messages stored so far "
            f"(they are stored when the ticket closes). Discord said: {read.error}"
        )
    elif ticket.status in LIVE_STATUSES:
        notice = "This ticket has no channel yet; its messages show here once Discord has opened it."
    else:
        notice = ""
    history, kept = stored_as_discord(selectors.ticket_messages_with_attachments(ticket=ticket))
    if not history and not notice and ticket.status not in LIVE_STATUSES:
        notice = "No messages were stored for this ticket."
    return messages_for_display(ticket, history, kept=kept), Conversation(source="stored", notice=notice)


def conversation_for_page(ticket: Ticket, *, refresh: bool = False) -> Conversation:
    shown, conversation = _history(ticket, refresh)
    posts = list(ticket.posts.order_by("created_at", "id"))
    sent_by_message = {p.discord_message_id: p for p in posts if p.status == PostStatus.SENT}
    entries = []
    for message in shown:
        post = sent_by_message.get(message["id"])
        entries.append({**message, "kind": "message", "staff_reply_by": post.author_name if post else ""})
    shown_ids = {m["id"] for m in shown}
    for post in posts:
        if post.kind == PostKind.REPLY and post.discord_message_id in shown_ids:
            continue
        if post.kind == PostKind.REPLY and post.status == PostStatus.SENT and conversation.source == "discord":
            continue  # sent, but deleted in Discord since: the channel is what the customer sees
        entries.append(
            {
                "kind": "note" if post.kind == PostKind.NOTE else "post",
                "id": f"post-{post.pk}",
                "author_name": post.author_name,
                "sent_at": post.created_at,
                "text": post.content,
                "status": post.get_status_display(),
                "error": post.last_error,
            }
        )
    entries.sort(key=lambda e: e["sent_at"])
    conversation.entries = entries
    return conversation


@dataclass
class CustomerCard:
    customer: Customer
    stage: str
    vip: bool
    plan: str
    subscription_status: str
    failed_payment: object
    last_failure_at: datetime | None
    emails: list


def customer_card(ticket: Ticket) -> CustomerCard | None:
    """The customer 360's summary for Support: stage, plan and status, VIP, the last payment failure, recent emails."""
    customer = ticket.customer
    if customer is None:
        return None
    subscription = subscription_current_for_customer(customer=customer)
    failure = customer.timeline_events.filter(kind="invoice.payment_failed").order_by("-occurred_at").first()
    return CustomerCard(
        customer=customer,
        stage=customer.get_lifecycle_stage_display(),
        vip=customer.vip_status,
        plan=(subscription.product_name or subscription.product_id) if subscription else "no subscription",
        subscription_status=subscription.get_status_display() if subscription else "",
        failed_payment=failed_payment(stripe_customer_id=customer.stripe_customer_id),
        last_failure_at=failure.occurred_at if failure else None,
        emails=customer_emails_recent(customer=customer, limit=EMAILS_SHOWN),
    )


def audit_entries(ticket: Ticket) -> list[TicketAuditEntry]:
    return list(TicketAuditEntry.objects.filter(ticket=ticket).order_by("-created_at", "-id")[:50])


def transcript_delivery(ticket: Ticket) -> TranscriptDelivery | None:
    return TranscriptDelivery.objects.filter(ticket=ticket).first()


def close_request_pending(ticket: Ticket) -> TicketCloseRequest | None:
    return TicketCloseRequest.objects.filter(ticket=ticket, status=CloseRequestStatus.PENDING).first()
