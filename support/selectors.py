"""Reads of support's tables (and the CRM context a ticket shows), with their joins applied."""

from datetime import datetime, timedelta
from statistics import median

from django.db.models import Count, Prefetch, Q, QuerySet

from billing.selectors import subscription_current_for_customer
from customers.models import Customer, TimelineEvent

from .models import ACTIVE_STATUSES, Ticket, TicketAttachment, TicketCategory, TicketMessage, TicketStatus


def customer_by_discord_id(*, discord_user_id: str) -> Customer | None:
    return Customer.objects.filter(discord_user_id=discord_user_id).first() if discord_user_id else None


def active_tickets_of(*, discord_user_id: str) -> list[Ticket]:
    return list(Ticket.objects.filter(discord_user_id=discord_user_id, status__in=ACTIVE_STATUSES))


def last_closed_ticket_of(*, discord_user_id: str) -> Ticket | None:
    tickets = Ticket.objects.filter(discord_user_id=discord_user_id, status=TicketStatus.CLOSED)
    return tickets.order_by("-closed_at").first()


def ticket_get(*, ticket_id: int) -> Ticket | None:
    return Ticket.objects.select_related("customer").filter(pk=ticket_id).first()


# Never read for a list or the API: the interaction token is a credential (it edits the customer's reply) and the
# rendered transcript can be large; the transcript is served as messages instead.
_TICKET_HEAVY_FIELDS = ("interaction_token", "transcript_html")


def ticket_list() -> QuerySet[Ticket]:
    """Tickets with their customer, for lists (the REST API)."""
    return Ticket.objects.select_related("customer").defer(*_TICKET_HEAVY_FIELDS)


def ticket_detail_list() -> QuerySet[Ticket]:
    """Tickets with their transcript: messages in the order they were sent, each with its attachments' metadata (the
    stored bytes are left in the database)."""
    attachments = TicketAttachment.objects.defer("data").order_by("id")
    messages = TicketMessage.objects.order_by("sent_at", "id").prefetch_related(
        Prefetch("attachments", queryset=attachments)
    )
    return ticket_list().prefetch_related(Prefetch("messages", queryset=messages))


def tickets_open_for_customer(*, customer: Customer) -> QuerySet[Ticket]:
    """The customer's tickets not closed yet (opening, open or closing), newest first (the customer record in the REST
    API)."""
    return (
        Ticket.objects.filter(customer=customer, status__in=ACTIVE_STATUSES)
        .defer(*_TICKET_HEAVY_FIELDS)
        .order_by("-opened_at", "-id")
    )


def customers_with_open_tickets():
    """The ids of the customers with a ticket not closed yet (opening, open or closing; as tickets_open_for_customer),
    never null: a condition over customers (marketing's segments)."""
    return Ticket.objects.filter(status__in=ACTIVE_STATUSES, customer__isnull=False).values("customer_id")


def tickets_recent_for_customer(*, customer: Customer, limit: int) -> list[Ticket]:
    """The customer's newest tickets, without their heavy text (the customer 360)."""
    return list(
        Ticket.objects.filter(customer=customer)
        .defer("interaction_token", "transcript_html", "description")
        .order_by("-opened_at", "-id")[:limit]
    )


def tickets_active_count_for_customer(*, customer: Customer) -> int:
    """How many of the customer's tickets are not closed yet (opening, open or closing)."""
    return Ticket.objects.filter(customer=customer, status__in=ACTIVE_STATUSES).count()


def ticket_customer_context(*, ticket: Ticket) -> list[str]:
    """What staff should know about the customer, for the opening message (the customer sees it too)."""
    customer = ticket.customer
    if customer is None or ticket.customer_link != "discord" or customer.discord_user_id != ticket.discord_user_id:
        # Everyone in the channel reads this, and only a proven link (support/identity.py) says whose account it is.
        # The same words whether or not the typed email is a customer's, so the form tells nobody who is one.
        if ticket.contact_email:
            return [
                "Customer: not linked to the CRM yet. If the email given belongs to a ModReady account, we sent it a "
                "link to connect this Discord account; account details show here once it is confirmed."
            ]
        return ["Customer: not linked to the CRM."]
    lines = [f"Customer: {customer.name or customer.email} · stage {customer.get_lifecycle_stage_display()}"]
    if customer.vip_status:
        lines[0] += " · **VIP**"
    subscription = subscription_current_for_customer(customer=customer)
    if subscription:
        lines.append(
            f"Plan: {subscription.product_name or subscription.product_id} · {subscription.get_status_display()}"
        )
    else:
        lines.append("Plan: no subscription")
    counts = (
        Ticket.objects.filter(customer=customer)
        .exclude(pk=ticket.pk)
        .aggregate(
            open=Count("pk", filter=Q(status__in=ACTIVE_STATUSES)),
            past=Count("pk", filter=Q(status=TicketStatus.CLOSED)),
        )
    )
    lines.append(f"Other tickets: {counts['open']} open, {counts['past']} closed")
    failure = (
        TimelineEvent.objects.filter(customer=customer, kind="invoice.payment_failed").order_by("-occurred_at").first()
    )
    if failure:
        lines.append(f"Last payment failure: {failure.occurred_at:%Y-%m-%d}")
    return lines


def tickets_to_read(*, limit: int = 200) -> list[Ticket]:
    """Open tickets, least recently read first (by last seen message), for the activity job."""
    return list(
        Ticket.objects.filter(status=TicketStatus.OPEN)
        .exclude(discord_channel_id="")
        .order_by("last_message_at")[:limit]
    )


def tickets_inactive(*, since: datetime) -> QuerySet[Ticket]:
    """Open tickets whose last message (or, with none, their opening) is older than `since`."""
    return Ticket.objects.filter(status=TicketStatus.OPEN).filter(
        Q(last_message_at__lt=since) | Q(last_message_at__isnull=True, opened_at__lt=since)
    )


def opening_tickets_due(*, now: datetime, retry_after: timedelta) -> list[int]:
    """Tickets whose channel creation failed or whose task was lost, not tried for `retry_after`."""
    return list(
        Ticket.objects.filter(status=TicketStatus.OPENING, interaction_at__lte=now - retry_after)
        .filter(Q(last_error_at__isnull=True) | Q(last_error_at__lte=now - retry_after))
        .values_list("pk", flat=True)
    )


def closing_tickets_due(*, now: datetime, retry_after: timedelta) -> list[int]:
    """Tickets stuck in closing (a failed or lost close task) whose last attempt is old enough to try again."""
    return list(
        Ticket.objects.filter(status=TicketStatus.CLOSING, close_requested_at__lte=now - retry_after)
        .filter(Q(last_error_at__isnull=True) | Q(last_error_at__lte=now - retry_after))
        .values_list("pk", flat=True)
    )


def _median_minutes(values: list[timedelta]) -> float | None:
    return round(median(v.total_seconds() for v in values) / 60, 1) if values else None


def support_metrics(*, since: datetime, until: datetime) -> dict:
    """Open tickets by category (now); over tickets opened in [since, until): median minutes to first response and
    to resolution, overall and per staff member (the claimer, else the first responder); ratings."""
    open_by_category = dict(
        Ticket.objects.filter(status__in=ACTIVE_STATUSES).values_list("category").annotate(n=Count("pk"))
    )
    tickets = list(
        Ticket.objects.filter(opened_at__gte=since, opened_at__lt=until).exclude(status=TicketStatus.NOT_OPENED)
    )
    first = [t.first_staff_response_at - t.opened_at for t in tickets if t.first_staff_response_at]
    resolution = [t.closed_at - t.opened_at for t in tickets if t.status == TicketStatus.CLOSED and t.closed_at]
    ratings = [t.rating for t in tickets if t.rating]
    staff: dict[str, dict] = {}
    for ticket in tickets:
        name = ticket.claimed_by_name or ticket.first_responder_name
        if not name:
            continue
        entry = staff.setdefault(name, {"tickets": 0, "first": [], "resolution": [], "ratings": []})
        entry["tickets"] += 1
        if ticket.first_staff_response_at:
            entry["first"].append(ticket.first_staff_response_at - ticket.opened_at)
        if ticket.status == TicketStatus.CLOSED and ticket.closed_at:
            entry["resolution"].append(ticket.closed_at - ticket.opened_at)
        if ticket.rating:
            entry["ratings"].append(ticket.rating)
    return {
        "open_by_category": [(c.label, open_by_category.get(c.value, 0)) for c in TicketCategory],
        "tickets": len(tickets),
        "median_first_response_minutes": _median_minutes(first),
        "median_resolution_minutes": _median_minutes(resolution),
        "ratings": {
            "count": len(ratings),
            "average": round(sum(ratings) / len(ratings), 2) if ratings else None,
            "distribution": [(n, ratings.count(n)) for n in range(1, 6)],
        },
        "staff": [
            {
                "name": name,
                "tickets": entry["tickets"],
                "median_first_response_minutes": _median_minutes(entry["first"]),
                "median_resolution_minutes": _median_minutes(entry["resolution"]),
                "average_rating": round(sum(entry["ratings"]) / len(entry["ratings"]), 2) if entry["ratings"] else None,
            }
            for name, entry in sorted(staff.items())
        ],
    }


def tickets_open_summary(*, limit: int = 5) -> dict:
    """The tickets not closed yet: how many, and the longest-waiting ones with their customer (the dashboard)."""
    active = Ticket.objects.filter(status__in=ACTIVE_STATUSES)
    return {
        "count": active.count(),
        "oldest": list(
            active.select_related("customer").defer(*_TICKET_HEAVY_FIELDS).order_by("opened_at", "id")[:limit]
        ),
    }


def ticket_messages(*, ticket: Ticket) -> list[TicketMessage]:
    """The ticket's stored messages (saved at close), oldest first."""
    return list(TicketMessage.objects.filter(ticket=ticket).order_by("sent_at", "id"))


def ticket_messages_with_attachments(*, ticket: Ticket) -> list[TicketMessage]:
    """The stored messages, oldest first, with their attachments' metadata (the bytes stay in the database)."""
    attachments = TicketAttachment.objects.defer("data").order_by("id")
    return list(
        TicketMessage.objects.filter(ticket=ticket)
        .order_by("sent_at", "id")
        .prefetch_related(Prefetch("attachments", queryset=attachments))
    )
