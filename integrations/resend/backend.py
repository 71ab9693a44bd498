"""django-anymail's Resend backend, extended to send Resend's `Idempotency-Key` header.

anymail posts to `POST /emails` but has no notion of idempotency. Resend remembers a key for 24 hours and answers a
repeat with the first answer without sending again (https://resend.com/docs/dashboard/emails/idempotency-keys).
A caller sets `message.idempotency_key` (derived from our ids, e.g. "email-queue-item:42") before `send()`; a worker
that dies after Resend accepted the email and before our commit then cannot cause a second email when the send is
retried with the same key.

Timeouts are (connect, read) like every other client of ours (integrations/http.py), not anymail's flat 30 s.
"""

from anymail.backends.resend import EmailBackend as AnymailResendBackend
from anymail.backends.resend import ResendPayload as AnymailResendPayload
from django.conf import settings

from integrations.http import USER_AGENT

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_LENGTH = 256  # Resend's limit


class ResendPayload(AnymailResendPayload):
    def __init__(self, message, defaults, backend, *args, **kwargs):
        super().__init__(message, defaults, backend, *args, **kwargs)
        key = getattr(message, "idempotency_key", None)
        if key:
            if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
                raise ValueError(f"Idempotency key longer than {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
            self.headers[IDEMPOTENCY_HEADER] = key


class EmailBackend(AnymailResendBackend):
    def __init__(self, **kwargs):
        kwargs.setdefault("timeout", (3.05, getattr(settings, "AUTOMATIONS_SEND_TIMEOUT", 15)))
        super().__init__(**kwargs)

    def create_session(self):
        session = super().create_session()
        session.headers["User-Agent"] = f"{USER_AGENT} {session.headers.get('User-Agent', '')}".strip()
        return session

    def build_message_payload(self, message, defaults):
        return ResendPayload(message, defaults, self)
