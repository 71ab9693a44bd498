"""The Discord bot token's health, checked while staff are told it was refused (integrations/alerts.py).

Here, beside the client, because it calls the client: the alerts module only records and clears alerts, and the
client reports a refused or accepted token to it."""

from core.configuration import provider_is_configured
from integrations.alerts import alert_is_active
from integrations.models import AlertKind

from .client import DiscordClient, DiscordError


def discord_token_probe() -> str:
    """While the token alert is active, one cheap bot call (`GET /users/@me`) that clears it once the token works
    again, even when no ticket or invite needs Discord. Run by the support activity job (every 2 minutes), so a
    refused token costs one invalid request per 2 minutes, far from Discord's IP ban (10,000 in 10 minutes)."""
    if not alert_is_active(kind=AlertKind.DISCORD_TOKEN_REJECTED):
        return "no alert"
    if not provider_is_configured("Discord API"):  # integrations/providers.py
        return "not configured"
    try:
        DiscordClient.from_settings().current_user()  # the client clears or refreshes the alert itself
    except DiscordError:
        return "still refused"
    return "works again"
