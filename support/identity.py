"""Which customer a Discord user is: a link made only by proof, never by an email typed in the ticket form.

Anyone can type anyone's email in the form. So a typed email that belongs to a customer links nothing: the ticket opens
without a customer (no account details in Discord; staff see "unverified: typed email x" in the admin), and the
customer's address on file gets a one-time link (`DiscordLinkRequest`). The link is signed (salted, with our secret
key), short-lived (DISCORD_LINK_CONFIRM_MINUTES), single use, and opens a page that says what confirming does before it
does it (support/link_views.py). Only a confirmation there, or staff linking by hand from the admin (audited through
backoffice.staff_actions), stores the Discord id on the customer; then the user's tickets are attached to the customer.

Email to the customer's mailbox is limited, so the form cannot be used to flood it: one pending link per customer and
Discord user, at most MAX_LINK_EMAILS_PER_DAY per customer, none again for a Discord user the customer declined.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from core.signed_ids import id_token_make, id_token_read
from customers import services as customer_services
from customers.models import Customer, TimelineSource

from .models import DiscordLinkRequest, Ticket, TicketStatus
from .ticket_timeline import ticket_opened_record

logger = logging.getLogger(__name__)

LINK_SALT = "support.discord-link"
MAX_LINK_EMAILS_PER_DAY = 3
BLOCKED_PREFIX = "not sent: the address is blocked"


# --- the link -----------------------------------------------------------------------------------------------------


def link_token(request: DiscordLinkRequest) -> str:
    """Opaque to the reader: the request's id, signed. The same for every send of one request, so a retried email is
    byte for byte the first one (Resend's idempotency key then holds); its lifetime is the request's `expires_at`, and
    one-time use is kept in the database."""
    return id_token_make(salt=LINK_SALT, id=request.pk)


def link_url(request: DiscordLinkRequest) -> str:
    return settings.SITE_URL + reverse("discord-link", args=[link_token(request)])


def link_request_from_token(token: str) -> DiscordLinkRequest | None:
    """The request a token of ours names, None for anything else (tampered or truncated)."""
    request_id = id_token_read(salt=LINK_SALT, token=token)
    if request_id is None:
        return None
    return DiscordLinkRequest.objects.select_related("customer").filter(pk=request_id).first()


def link_request_state(request: DiscordLinkRequest | None) -> str:
    """What the customer's page shows: confirm (they may still decide), confirmed, declined, expired, invalid."""
    if request is None:
        return "invalid"
    if request.confirmed_at:
        return "confirmed"
    if request.declined_at:
        return "declined"
    now = timezone.now()
    lifetime = timedelta(minutes=settings.DISCORD_LINK_CONFIRM_MINUTES)  # a shortened lifetime holds for links sent
    if request.expires_at <= now or request.created_at + lifetime <= now:
        return "expired"
    if customer_services.normalize_email(request.customer.email) != customer_services.normalize_email(request.email):
        return "expired"  # the account's address changed since: the mailbox that got the link is no longer theirs
    return "confirm"


# --- asking ----------------------------------------------------------------------------------------------------------


def link_request_for_ticket(*, ticket: Ticket) -> DiscordLinkRequest | None:
    """Inside the ticket's opening transaction: when the typed email is a customer's, ask that customer (by email,
    after commit) to confirm the Discord user. None when there is nobody to ask or the mailbox had enough emails."""
    email = customer_services.normalize_email(ticket.contact_email)
    if not email or ticket.customer_id:
        return None
    customer = Customer.objects.select_for_update().filter(email__iexact=email).first()
    if customer is None or customer.discord_user_id == ticket.discord_user_id:
        return None
    now = timezone.now()
    asked = DiscordLinkRequest.objects.filter(customer=customer)
    pair = asked.filter(discord_user_id=ticket.discord_user_id)
    if pair.exclude(declined_at=None).exists():
        return None  # the customer said this Discord user is not them: staff can still link by hand
    pending = pair.filter(confirmed_at=None, declined_at=None, expires_at__gt=now).first()
    if pending:
        return pending
    if asked.filter(created_at__gte=now - timedelta(days=1)).count() >= MAX_LINK_EMAILS_PER_DAY:
        logger.info("Customer %s had %s Discord link emails today; no more", customer.pk, MAX_LINK_EMAILS_PER_DAY)
        return None
    request = DiscordLinkRequest.objects.create(
        customer=customer,
        discord_user_id=ticket.discord_user_id,
        discord_username=ticket.discord_username,
        ticket=ticket,
        email=customer.email,
        expires_at=now + timedelta(minutes=settings.DISCORD_LINK_CONFIRM_MINUTES),
    )
    transaction.on_commit(
        lambda: _enqueue_email(request.pk),
    )
    return request


def _enqueue_email(request_id: int) -> None:
    from django_q.tasks import async_task

    async_task("support.tasks.discord_link_email_task", request_id, task_name=f"discord-link-email:{request_id}")


def link_email_send(*, request_id: int) -> str:
    """Send the confirmation link to the customer's address on file (a task; safe to run twice).

    A send whose outcome is unknown (a timeout, a 5xx, a dropped connection) may have gone out: the error is kept for
    staff, and support's retry job (`link_emails_retry`) sends the same message again under the same idempotency key,
    which Resend answers without a second email; `sent_at` ends the retries once one send is confirmed."""
    from automations.installation import provider_idempotency_key
    from automations.selectors import suppression_state_for_email

    request = DiscordLinkRequest.objects.select_related("customer").filter(pk=request_id).first()
    if request is None or request.sent_at or link_request_state(request) != "confirm":
        return "nothing to do"
    address = customer_services.normalize_email(request.email)
    suppression = suppression_state_for_email(email=address, opt_in_confirmed=False)
    if not suppression["transactional_allowed"]:
        _send_failed(request, f"{BLOCKED_PREFIX} ({', '.join(suppression['reasons'])})")
        return "suppressed"
    context = {
        "url": link_url(request),
        "username": request.discord_username or request.discord_user_id,
        "minutes": settings.DISCORD_LINK_CONFIRM_MINUTES,
        "customer": request.customer,
    }
    message = EmailMultiAlternatives(
        subject="Connect your Discord account to ModReady support?",
        body=render_to_string("support/email/discord_link.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[request.email],
    )
    message.attach_alternative(render_to_string("support/email/discord_link.html", context), "text/html")
    # Namespaced per installation like every key we send Resend (automations/installation.py).
    message.idempotency_key = provider_idempotency_key(f"discord-link-request:{request.pk}")
    try:
        with get_connection() as connection:  # EMAIL_BACKEND: Resend, the local outbox, or refused when disabled
            message.connection = connection
            message.send()
    except Exception as exc:  # recorded, never raised to the task: the retry job sends it again
        _send_failed(request, f"not sent yet, will retry: {type(exc).__name__}: {exc}")
        return "failed"
    DiscordLinkRequest.objects.filter(pk=request.pk).update(sent_at=timezone.now(), send_error="")
    return "sent"


def link_emails_retry(*, now, wait: timedelta) -> int:
    """The confirmation emails not sent yet whose links still work (a send that failed, or a task that was lost),
    sent again: the same message under the same key. Blocked addresses are not tried again. Returns how many."""
    due = (
        DiscordLinkRequest.objects.filter(
            sent_at__isnull=True,
            confirmed_at__isnull=True,
            declined_at__isnull=True,
            expires_at__gt=now,
            created_at__lte=now - wait,
        )
        .exclude(send_error__startswith=BLOCKED_PREFIX)
        .values_list("pk", flat=True)
    )
    sent = 0
    for request_id in due:
        sent += link_email_send(request_id=request_id) == "sent"
    return sent


def _send_failed(request: DiscordLinkRequest, error: str) -> None:
    logger.warning("Discord link email %s %s", request.pk, error)
    DiscordLinkRequest.objects.filter(pk=request.pk).update(send_error=error[:500])


# --- answering -------------------------------------------------------------------------------------------------------


@transaction.atomic
def link_request_confirm(*, request_id: int) -> str:
    """The customer confirmed from their mailbox: link the Discord user. Returns the page's new state."""
    request = DiscordLinkRequest.objects.select_for_update().select_related("customer").get(pk=request_id)
    state = link_request_state(request)
    if state != "confirm":
        return state
    request.confirmed_at = timezone.now()
    request.save(update_fields=["confirmed_at"])
    _link(
        customer=request.customer,
        discord_user_id=request.discord_user_id,
        source_key=f"discord-link-confirmed:{request.pk}",
        summary=f"Discord user {request.discord_username or request.discord_user_id} linked: confirmed from the "
        f"customer's mailbox ({request.email})",
        payload={"proof": "email", "link_request_id": request.pk},
    )
    return "confirmed"


@transaction.atomic
def link_request_decline(*, request_id: int) -> str:
    """The customer said "this was not me": nothing is linked, and this Discord user is not emailed about them again."""
    request = DiscordLinkRequest.objects.select_for_update().select_related("customer").get(pk=request_id)
    state = link_request_state(request)
    if state != "confirm":
        return state
    request.declined_at = timezone.now()
    request.save(update_fields=["declined_at"])
    customer_services.timeline_event_record(
        customer=request.customer,
        source=TimelineSource.DISCORD,
        source_key=f"discord-link-declined:{request.pk}",
        kind="discord.link_declined",
        summary=f"The customer said Discord user {request.discord_username or request.discord_user_id}, who typed "
        "their email in a ticket, is not them",
        payload={"link_request_id": request.pk},
        object_type="discord.user",
        object_id=request.discord_user_id,
    )
    return "declined"


def discord_link_by_staff(*, customer: Customer, discord_user_id: str) -> dict:
    """Staff link a Discord user by hand (backoffice.staff_actions writes the audit row and timeline entry around
    this, in the same transaction). Returns what changed, for the audit."""
    return _link(customer=customer, discord_user_id=discord_user_id, source_key="", summary="", payload={})


def _link(*, customer: Customer, discord_user_id: str, source_key: str, summary: str, payload: dict) -> dict:
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    previous = customer.discord_user_id
    moved_from = []
    # One customer per Discord user: a proven link replaces an older one elsewhere.
    for other in Customer.objects.select_for_update().filter(discord_user_id=discord_user_id).exclude(pk=customer.pk):
        customer_services.customer_update(customer=other, discord_user_id="")
        customer_services.timeline_event_record(
            customer=other,
            source=TimelineSource.DISCORD,
            source_key=f"discord-unlinked:{other.pk}:{discord_user_id}:{timezone.now().timestamp()}",
            kind="discord.unlinked",
            summary=f"Discord user {discord_user_id} unlinked: it was proven to be customer {customer.pk}",
            payload={"discord_user_id": discord_user_id, "now_customer_id": customer.pk},
            object_type="discord.user",
            object_id=discord_user_id,
        )
        moved_from.append(other.pk)
    customer_services.customer_update(customer=customer, discord_user_id=discord_user_id)
    attached = tickets_attach(customer=customer, discord_user_id=discord_user_id)
    details = {"discord_user_id": discord_user_id, "previous": previous, "tickets": attached, "moved_from": moved_from}
    if source_key:
        customer_services.timeline_event_record(
            customer=customer,
            source=TimelineSource.DISCORD,
            source_key=source_key,
            kind="discord.linked",
            summary=summary,
            payload={**payload, **details},
            object_type="discord.user",
            object_id=discord_user_id,
        )
    return details


def tickets_attach(*, customer: Customer, discord_user_id: str) -> list[int]:
    """The Discord user's tickets that have no customer become this customer's; the open ones show the account in
    their opening message again (refreshed after commit). A ticket whose category the customer already has active
    (the one-per-customer constraint) stays unattached."""
    attached = []
    for ticket in Ticket.objects.select_for_update().filter(discord_user_id=discord_user_id, customer=None):
        ticket.customer, ticket.customer_link = customer, "discord"
        try:
            with transaction.atomic():
                ticket.save(update_fields=["customer", "customer_link"])
        except IntegrityError:
            continue
        attached.append(ticket.pk)
        if ticket.discord_channel_id and ticket.status != TicketStatus.NOT_OPENED:
            # What ticket_channel_opened records for a ticket whose customer was known at opening (same key).
            ticket_opened_record(ticket=ticket, customer=customer)
        if ticket.status == TicketStatus.OPEN and ticket.opening_message_id:
            _enqueue_refresh(ticket.pk)
    return attached


def _enqueue_refresh(ticket_id: int) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task(
            "support.tasks.ticket_opening_message_refresh_task",
            ticket_id,
            task_name=f"ticket-refresh:{ticket_id}:linked:{timezone.now():%s%f}",
        )
    )
