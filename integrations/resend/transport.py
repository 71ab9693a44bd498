"""Resend as an email transport (integrations/email_transport.py): one email through anymail's backend (plus the
Idempotency-Key header), several through the batch endpoint; errors raised as the provider-neutral SendError.

The rate limit starts at AUTOMATIONS_RESEND_REQUESTS_PER_SECOND and follows Resend's `ratelimit-limit` answer header
once one is seen; the queue spaces calls across workers by it (automations/pacing.py).
"""

from typing import Any

from django.conf import settings

from integrations.django_mail.transport import email_message_send

from .client import ResendClient, ResendError

ANYMAIL_BACKEND = "integrations.resend.backend.EmailBackend"


class ResendTransport:
    provider = "resend"
    display_name = "Resend"

    def __init__(self, **kwargs) -> None:
        self.batch_size = settings.AUTOMATIONS_BATCH_SIZE
        self.client = ResendClient.from_settings()
        self.requests_per_second = float(settings.AUTOMATIONS_RESEND_REQUESTS_PER_SECOND)

    @classmethod
    def configuration_errors(cls) -> list:
        # RESEND_API_KEY is declared once, as integrations.providers.RESEND: core/configuration.py stops the start
        # and reports it in `manage.py check` (automations.E002) while this transport is selected.
        return []

    def send_batch(self, *, messages: list[dict[str, Any]], idempotency_key: str) -> list[str]:
        if len(messages) == 1:
            return [self.send(message=messages[0], idempotency_key=idempotency_key)]
        try:
            return self.client.batch_send(messages=messages, idempotency_key=idempotency_key)
        except ResendError as exc:
            raise exc.as_send_error() from exc
        finally:
            if self.client.rate_limit:
                self.requests_per_second = float(self.client.rate_limit)

    def send(self, *, message: dict[str, Any], idempotency_key: str = "") -> str:
        from anymail.exceptions import AnymailRequestsAPIError

        try:
            return email_message_send(message, idempotency_key=idempotency_key, backend=ANYMAIL_BACKEND)
        except AnymailRequestsAPIError as exc:
            response = getattr(exc, "response", None)
            # No response: a timeout or connection error, which anymail wraps.
            error = ResendError.from_transport(exc) if response is None else ResendError.from_response(response)
            raise error.as_send_error() from exc
        except (OSError, ValueError) as exc:
            raise ResendError.from_transport(exc).as_send_error() from exc
