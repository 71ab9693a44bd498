"""Start-up checks: an unknown email transport, or the selected one without its settings, fails loudly."""

from django.conf import settings
from django.core.checks import Error, Tags, register

from .transports import EMAIL_TRANSPORTS, transport_class


@register(Tags.compatibility)
def email_transport_configured(app_configs, **kwargs):
    if settings.AUTOMATIONS_EMAIL_TRANSPORT not in EMAIL_TRANSPORTS:
        names = " or ".join(EMAIL_TRANSPORTS)
        return [Error(f"AUTOMATIONS_EMAIL_TRANSPORT must be {names}.", id="automations.E001")]
    return transport_class().configuration_errors()
