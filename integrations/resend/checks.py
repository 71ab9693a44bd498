"""Start-up checks for Resend's tracking webhook: a signing secret that cannot verify, or none while sending.

Sending through Resend without its key is the declaration `RESEND` in integrations/providers.py (core/configuration.py
checks it at start and in `manage.py check`, id automations.E002)."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .webhooks import signing_secret, signing_secret_problem


@register(Tags.compatibility)
def resend_tracking_configured(app_configs, **kwargs):
    problems = []
    secret = signing_secret()
    if secret and signing_secret_problem(secret):
        problems.append(
            Error(
                f"{signing_secret_problem(secret)}: Resend tracking webhooks would all be refused.",
                hint="Copy the webhook's signing secret (whsec_...) from Resend into RESEND_SIGNING_SECRET.",
                id="automations.E003",
            )
        )
    if settings.ANYMAIL.get("RESEND_API_KEY") and not secret:
        problems.append(
            Warning(
                "RESEND_SIGNING_SECRET is not set: Resend tracking webhooks are refused (503) until it is.",
                hint="Copy the webhook's signing secret (whsec_...) from Resend into RESEND_SIGNING_SECRET.",
                id="automations.W001",
            )
        )
    return problems
