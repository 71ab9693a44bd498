"""django-q2 entry points: take ids, call one workflow, safe to run twice (see support/workflows.py)."""

from datetime import timedelta

from django.utils import timezone

from . import selectors, services, workflows

OPENING_GIVE_UP_HOURS = 6  # a ticket still without a channel after this frees the customer's slot


def ticket_open_task(ticket_id: int) -> str:
    return workflows.ticket_open_run(ticket_id=ticket_id)


def ticket_close_task(ticket_id: int) -> str:
    return workflows.ticket_close_run(ticket_id=ticket_id)


def ticket_feedback_request_task(ticket_id: int) -> str:
    return workflows.ticket_feedback_request_run(ticket_id=ticket_id)


def ticket_opening_message_refresh_task(ticket_id: int) -> None:
    workflows.ticket_opening_message_refresh(ticket_id=ticket_id)


def tickets_activity_task() -> int:
    """Schedule (every 2 minutes): read new messages of open tickets, then the SLA check (support/sla_workflows.py:
    a ticket about to miss its target pings its staff role once). While Discord refuses the bot token, first one
    probe call that clears the staff alert once the token works again (integrations/discord/token_health.py)."""
    from integrations.discord.token_health import discord_token_probe

    from .sla_workflows import sla_check_run

    discord_token_probe()
    read = workflows.activity_read_run()
    sla_check_run()  # after the read, so an answer written since the last poll stops the clock before any ping
    return read


def tickets_autoclose_task() -> dict:
    """Schedule (every 15 minutes): warn, then close, tickets without activity."""
    return workflows.autoclose_run()


def tickets_retry_task() -> int:
    """Schedule (every 5 minutes): retry openings and closes that failed midway or whose task was lost; openings
    still failing after OPENING_GIVE_UP_HOURS become "not opened"; Discord-link emails not sent yet go again."""
    from . import identity

    now, wait = timezone.now(), timedelta(minutes=5)
    identity.link_emails_retry(now=now, wait=timedelta(minutes=1))
    services.tickets_opening_give_up(opened_before=now - timedelta(hours=OPENING_GIVE_UP_HOURS))
    opening = selectors.opening_tickets_due(now=now, retry_after=wait)
    for ticket_id in opening:
        workflows.ticket_open_run(ticket_id=ticket_id)
    closing = selectors.closing_tickets_due(now=now, retry_after=wait)
    for ticket_id in closing:
        workflows.ticket_close_run(ticket_id=ticket_id)
    return len(opening) + len(closing)


def discord_link_email_task(request_id: int) -> str:
    """Email the customer the one-time link that connects a Discord account (support/identity.py)."""
    from . import identity

    return identity.link_email_send(request_id=request_id)
