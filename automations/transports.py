"""The email transports the queue can send through, picked by AUTOMATIONS_EMAIL_TRANSPORT: one line per provider.

Each is a class satisfying integrations.email_transport.EmailTransport; a new provider is its package under
integrations/ plus one line here.
"""

from django.conf import settings
from django.utils.module_loading import import_string

from integrations.email_transport import EmailTransport

EMAIL_TRANSPORTS = {
    "resend": "integrations.resend.transport.ResendTransport",
    "django": "integrations.django_mail.transport.DjangoMailTransport",
}


def transport_class(name: str | None = None) -> type[EmailTransport]:
    return import_string(EMAIL_TRANSPORTS[name or settings.AUTOMATIONS_EMAIL_TRANSPORT])


def transport_display_name(provider: str) -> str:
    """How staff read a provider named by its key (a tracking event's, a pause's)."""
    if provider not in EMAIL_TRANSPORTS:
        return "the provider"
    return transport_class(provider).display_name


def transport_get(name: str | None = None) -> EmailTransport:
    """The selected transport, built from settings (raises ImproperlyConfigured when they are missing)."""
    return transport_class(name)()
