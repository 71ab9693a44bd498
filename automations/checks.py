"""Start-up checks: sending through Resend without its settings fails loudly, naming the missing variable."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.compatibility)
def resend_configured(app_configs, **kwargs):
    problems = []
    if settings.AUTOMATIONS_EMAIL_TRANSPORT not in ("resend", "django"):
        problems.append(Error("AUTOMATIONS_EMAIL_TRANSPORT must be resend or django.", id="automations.E001"))
    if settings.AUTOMATIONS_EMAIL_TRANSPORT == "resend" and not settings.ANYMAIL.get("RESEND_API_KEY"):
        problems.append(
            Error(
                "The email queue sends through Resend but RESEND_API_KEY is not set.",
                hint="Set RESEND_API_KEY, or AUTOMATIONS_EMAIL_TRANSPORT=django to write emails with EMAIL_BACKEND.",
                id="automations.E002",
            )
        )
    if settings.ANYMAIL.get("RESEND_API_KEY") and not settings.ANYMAIL.get("RESEND_SIGNING_SECRET"):
        problems.append(
            Warning(
                "RESEND_SIGNING_SECRET is not set: Resend tracking webhooks are accepted without a signature check.",
                hint="Copy the webhook's signing secret (whsec_...) from Resend into RESEND_SIGNING_SECRET.",
                id="automations.W001",
            )
        )
    return problems
