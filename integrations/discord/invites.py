"""The invite client the crowdfunding workflow uses: the support issue's DiscordClient (rate limits, typed errors)
configured from the invite settings. Only the bot token is needed for invites, not the interaction settings."""

from django.conf import settings

from core.configuration import provider_require

from .client import DiscordClient


def invite_client() -> DiscordClient:
    provider_require("Discord invites")
    return DiscordClient(
        bot_token=settings.DISCORD_BOT_TOKEN,
        application_id=settings.DISCORD_APPLICATION_ID,
        api_url=settings.DISCORD_API_URL,
        timeout=(3.05, settings.DISCORD_TIMEOUT),
        user_agent=f"DiscordBot ({settings.SITE_URL}, 1.0)",
        report_token_health=True,
    )


def invite_url(invite: dict) -> str:
    return f"https://discord.gg/{invite['code']}"
