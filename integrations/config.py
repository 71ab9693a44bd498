"""Which providers are enabled, and the loud failure at start when one is enabled but not configured.

`IntegrationsConfig.ready()` calls `configuration_check()`: a process (web, qcluster, a command) with
`MAUTIC_ENABLED=1` and no `MAUTIC_BASE_URL` stops with a message naming the variable, instead of failing on the
first webhook hours later.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

REQUIRED: dict[str, tuple[str, ...]] = {
    "MAUTIC_ENABLED": (
        "MAUTIC_BASE_URL",
        "MAUTIC_USERNAME",
        "MAUTIC_PASSWORD",
        "MAUTIC_WEBHOOK_SECRET",
        "MAUTIC_EMAIL_INVITE_VIP",
        "MAUTIC_EMAIL_INVITE_BASIC",
        "MAUTIC_EMAIL_COUPON",
    ),
    "SHOPWARE_ENABLED": (
        "SHOPWARE_BASE_URL",
        "SHOPWARE_CLIENT_ID",
        "SHOPWARE_CLIENT_SECRET",
        "SHOPWARE_VIP_PROMOTION_ID",
        "STRIPE_VIP_RESERVATION_PRODUCT_ID",
    ),
    "ESPOCRM_ENABLED": ("ESPOCRM_BASE_URL", "ESPOCRM_API_KEY"),
    "DISCORD_INVITES_ENABLED": ("DISCORD_API_URL", "DISCORD_BOT_TOKEN", "DISCORD_INVITE_CHANNEL_ID"),
}


def missing_settings() -> list[str]:
    return [
        name
        for flag, names in REQUIRED.items()
        if getattr(settings, flag, False)
        for name in names
        if not getattr(settings, name, "")
    ]


def configuration_check() -> None:
    missing = missing_settings()
    if missing:
        raise ImproperlyConfigured(
            f"Integrations enabled but not configured: set {', '.join(missing)} (see .env.example)."
        )


def require(flag: str) -> None:
    """Called by a client before use: a disabled provider is a configuration error, not a silent skip."""
    if not getattr(settings, flag, False):
        raise ImproperlyConfigured(f"{flag} is off: this integration is disabled (see .env.example).")
    configuration_check()
