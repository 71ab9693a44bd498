"""One email per call through a Django email backend (EMAIL_BACKEND unless one is named)."""

from typing import Any

from django.core.mail import EmailMultiAlternatives, get_connection

from integrations.email_transport import SendError, SendErrorKind, kind_for_status


def email_message_build(message: dict[str, Any], *, idempotency_key: str) -> EmailMultiAlternatives:
    """The queue's message dict as a Django email, carrying its idempotency key for backends that send one."""
    email = EmailMultiAlternatives(
        subject=message["subject"],
        body=message["text"],
        from_email=message["from"],
        to=message["to"],
        # Sorted: the stored message comes back from its JSON column in another key order, and anymail writes the
        # headers in dict order; the request must be the same bytes on every retry under the email's key.
        headers=dict(sorted((message.get("headers") or {}).items())),
    )
    email.attach_alternative(message["html"], "text/html")
    email.idempotency_key = idempotency_key  # read by integrations.resend.backend and devtools.outbox
    return email


def email_message_send(message: dict[str, Any], *, idempotency_key: str, backend: str | None = None) -> str:
    """Send one message through a Django email backend; the provider's message id (or a local one).

    Raises what the backend raises: the transport turns it into a SendError.
    """
    email = email_message_build(message, idempotency_key=idempotency_key)
    with get_connection(backend) as connection:
        email.connection = connection
        email.send()
    status = getattr(email, "anymail_status", None)
    return (status.message_id if status else None) or f"local:{idempotency_key}"


class DjangoMailTransport:
    """One email per call through EMAIL_BACKEND: files in the local outbox, locmem in tests."""

    provider = ""  # local files or locmem: no account to pause
    display_name = "the email backend"
    batch_size = 1
    requests_per_second = 0.0

    def __init__(self, **kwargs) -> None:
        pass

    @classmethod
    def configuration_errors(cls) -> list:
        return []  # EMAIL_BACKEND is Django's own setting

    def send_batch(self, *, messages: list[dict[str, Any]], idempotency_key: str) -> list[str]:
        return [self.send(message=message, idempotency_key=idempotency_key) for message in messages]

    def send(self, *, message: dict[str, Any], idempotency_key: str = "") -> str:
        from anymail.exceptions import AnymailRequestsAPIError

        try:
            return email_message_send(message, idempotency_key=idempotency_key)
        except AnymailRequestsAPIError as exc:  # an anymail backend configured as EMAIL_BACKEND
            response = getattr(exc, "response", None)
            status = 0 if response is None else response.status_code
            body = f"{type(exc).__name__}: {exc}" if response is None else response.text
            raise SendError(kind=kind_for_status(status), status=status, detail=body[:2000]) from exc
        except (OSError, ValueError) as exc:  # SMTP and file backends: no answer we can read
            raise SendError(kind=SendErrorKind.UNKNOWN, detail=f"{type(exc).__name__}: {exc}"[:2000]) from exc
