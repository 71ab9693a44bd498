"""Start-up checks: sending through Resend without its settings fails loudly, naming the missing variable."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from integrations.resend.webhooks import signing_secret, signing_secret_problem


@register(Tags.compatibility)
def resend_configured(app_configs, **kwargs):
    problems = []
    if settings.AUTOMATIONS_EMAIL_TRANSPORT not in ("resend", "django"):
        problems.append(Error("AUTOMATIONS_EMAIL_TRANSPORT must be resend or django.", id="automations.E001"))
    # A missing RESEND_API_KEY with the Resend transport: automations.E002, declared in integrations/providers.py.
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
