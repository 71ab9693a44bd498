"""Alerts about an outside system's configuration that staff must act on: the Discord bot token refused (401), the
Message Content intent switched off. They show on the admin's front page (backoffice/dashboard.py), on the ticket list
(support/admin.py) and in `/healthz` (config/health.py, which answers 503 while one is active), and clear themselves
when the condition ends (the token works again, a channel's messages come back with their text).

Writers of `ProviderAlert`; each is one statement, safe to call from any worker at any time.
"""

import logging

from django.utils import timezone

from .models import AlertKind, ProviderAlert

logger = logging.getLogger(__name__)

BOT_LOGIN_REFUSED_MESSAGE = (
    "Discord refuses the bot token (401): tickets cannot be opened, read or closed, and crowdfunding invites are not "
    "made. Customers who open a ticket are told it failed. Reset the token in the Discord developer portal and set "
    "DISCORD_BOT_TOKEN; this notice clears itself once Discord accepts the token (checked every 2 minutes)."
)
MESSAGE_CONTENT_MISSING_MESSAGE = (
    "Discord returns ticket messages without their text: the bot's Message Content intent is off. Closing tickets is "
    'on hold (their channels are kept, nothing is lost). Turn on "Message Content Intent" under Bot in the Discord '
    "developer portal; held closes are retried every 5 minutes and this notice clears with the first one that reads "
    "the messages' text."
)


def alert_raise(*, kind: str, message: str, detail: str = "") -> None:
    """Record that the condition holds now (an upsert: the first time is kept, the last is updated)."""
    now = timezone.now()
    updated = ProviderAlert.objects.filter(kind=kind).update(message=message, detail=detail[:500], last_seen_at=now)
    if not updated:
        _, created = ProviderAlert.objects.get_or_create(
            kind=kind, defaults={"message": message, "detail": detail[:500], "first_seen_at": now, "last_seen_at": now}
        )
        if created:
            logger.error("Alert raised: %s (%s)", kind, detail[:200])


def alert_clear(*, kind: str) -> bool:
    """The condition has ended; True when an alert was active."""
    deleted, _ = ProviderAlert.objects.filter(kind=kind).delete()
    if deleted:
        logger.warning("Alert cleared: %s", kind)
    return bool(deleted)


def alerts_active() -> list[ProviderAlert]:
    return list(ProviderAlert.objects.order_by("first_seen_at"))


def alert_is_active(*, kind: str) -> bool:
    return ProviderAlert.objects.filter(kind=kind).exists()


# --- Discord ---------------------------------------------------------------------------------------------------------


def discord_token_rejected(*, error: Exception | None) -> None:
    """A bot-authenticated call answered 401 (the DiscordClient reports it; the error never holds the token)."""
    alert_raise(kind=AlertKind.DISCORD_TOKEN_REJECTED, message=BOT_LOGIN_REFUSED_MESSAGE, detail=str(error or ""))


def discord_token_accepted() -> None:
    """A bot-authenticated call succeeded: the token works (again)."""
    alert_clear(kind=AlertKind.DISCORD_TOKEN_REJECTED)


def discord_message_content_missing(*, detail: str) -> None:
    alert_raise(kind=AlertKind.DISCORD_MESSAGE_CONTENT_MISSING, message=MESSAGE_CONTENT_MISSING_MESSAGE, detail=detail)


def discord_message_content_seen() -> None:
    alert_clear(kind=AlertKind.DISCORD_MESSAGE_CONTENT_MISSING)
