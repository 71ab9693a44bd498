"""The SLA check that calls Discord: run by the activity schedule right after it reads the channels (every 2
minutes), so a response written in the last poll stops the clock before anyone is pinged."""

import logging
from datetime import datetime

from django.utils import timezone

from integrations.discord import DiscordError

from . import sla
from .support_time import in_support_hours
from .workflows import client

logger = logging.getLogger(__name__)


def _ping(ticket, alert) -> dict:
    """The message that pings the ticket's staff role (the category's own, support/category_roles.py) once."""
    what = "first response" if alert.kind == "first" else f"response #{alert.response_number}"
    return {
        "content": f"<@&{alert.role_id}> ticket #{ticket.pk} is about to miss its {what} target: due "
        f"<t:{int(alert.due_at.timestamp())}:R> (support hours). The customer is waiting.",
        "allowed_mentions": {"roles": [alert.role_id]},
        # Our alert's id, enforced by Discord for a few minutes: a repeat after a lost answer returns the same message.
        "nonce": f"sla-{alert.pk}",
        "enforce_nonce": True,
    }


def sla_check_run(*, now: datetime | None = None) -> dict:
    """Refresh the clocks, then ping each ticket about to miss its target, once per wait. Never outside support
    hours: the clock does not run then, and nobody is on duty to answer a ping."""
    now = now or timezone.now()
    clocks = sla.sla_clocks_refresh()
    if not in_support_hours(now):
        return {"clocks": clocks, "pinged": 0, "off_hours": True}
    pinged = 0
    discord = None
    for clock in sla.tickets_to_warn(now=now):
        alert = sla.sla_alert_claim(sla=clock)
        if alert is None or not alert.role_id or not clock.ticket.discord_channel_id:
            continue
        discord = discord or client()
        try:
            message = discord.message_create(
                channel_id=clock.ticket.discord_channel_id, payload=_ping(clock.ticket, alert)
            )
        except DiscordError as exc:  # kept unsent: the next poll tries again under the same nonce
            sla.sla_alert_failed(alert=alert, error=exc)
            logger.warning("SLA ping for ticket %s failed: %s", clock.ticket_id, exc)
            if exc.is_auth_failure:
                break
            continue
        sla.sla_alert_sent(alert=alert, message_id=message["id"])
        pinged += 1
    return {"clocks": clocks, "pinged": pinged, "off_hours": False}
