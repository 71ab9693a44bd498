"""What each outside system reached through integrations needs from the settings (core/configuration.py checks it).

Registered by `IntegrationsConfig.ready()`: an enabled provider with a missing variable stops the process at start,
naming the variable. The variables themselves are described in config/settings and `.env.example`.
"""

from core.configuration import ProviderSettings

MAUTIC = ProviderSettings(
    name="Mautic",
    enabled_by="MAUTIC_ENABLED",
    required=(
        "MAUTIC_BASE_URL",
        "MAUTIC_USERNAME",
        "MAUTIC_PASSWORD",
        "MAUTIC_WEBHOOK_SECRET",
        "MAUTIC_EMAIL_INVITE_VIP",
        "MAUTIC_EMAIL_INVITE_BASIC",
        "MAUTIC_EMAIL_COUPON",
    ),
)
SHOPWARE = ProviderSettings(
    name="Shopware",
    enabled_by="SHOPWARE_ENABLED",
    required=(
        "SHOPWARE_BASE_URL",
        "SHOPWARE_CLIENT_ID",
        "SHOPWARE_CLIENT_SECRET",
        "SHOPWARE_VIP_PROMOTION_ID",
        "STRIPE_VIP_RESERVATION_PRODUCT_ID",
    ),
)
ESPOCRM = ProviderSettings(
    name="EspoCRM", enabled_by="ESPOCRM_ENABLED", required=("ESPOCRM_BASE_URL", "ESPOCRM_API_KEY")
)
DISCORD_INVITES = ProviderSettings(
    name="Discord invites",
    enabled_by="DISCORD_INVITES_ENABLED",
    required=("DISCORD_API_URL", "DISCORD_BOT_TOKEN", "DISCORD_INVITE_CHANNEL_ID"),
)
# Support over Discord (the support app): interactions are verified with the public key, tickets opened by the bot.
DISCORD_SUPPORT = ProviderSettings(
    name="Discord support",
    enabled_by="DISCORD_ENABLED",
    required=(
        "DISCORD_APPLICATION_ID",
        "DISCORD_PUBLIC_KEY",
        "DISCORD_BOT_TOKEN",
        "DISCORD_GUILD_ID",
        "DISCORD_STAFF_ROLE_ID",
        "DISCORD_SUPPORT_CHANNEL_ID",
        "DISCORD_TICKET_CATEGORY_IDS",
    ),
)
# Any call to Discord's REST API as the bot (support, invites, the token probe): required when the client is built.
DISCORD_API = ProviderSettings(name="Discord API", required=("DISCORD_BOT_TOKEN", "DISCORD_APPLICATION_ID"))
# The email queue's Resend transport (AUTOMATIONS_EMAIL_TRANSPORT=resend); the system check keeps its id.
RESEND = ProviderSettings(
    name="Resend",
    enabled_by=("AUTOMATIONS_EMAIL_TRANSPORT", "resend"),
    required=("ANYMAIL.RESEND_API_KEY",),
    check_id="automations.E002",
    hint="Set RESEND_API_KEY, or AUTOMATIONS_EMAIL_TRANSPORT=django to write emails with EMAIL_BACKEND.",
)
# The website's trial signups, read daily (integrations/trials).
TRIALS = ProviderSettings(name="Trials database", required=("TRIALS_DB_PATH", "TRIALS_TABLE"))

PROVIDERS = (MAUTIC, SHOPWARE, ESPOCRM, DISCORD_INVITES, DISCORD_SUPPORT, DISCORD_API, RESEND, TRIALS)
