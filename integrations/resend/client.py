"""A client for Resend's batch endpoint, which anymail cannot use for different messages in one call.

`POST /emails/batch` takes up to 100 complete messages and answers `{"data": [{"id": ...}, ...]}` in the same
order (https://resend.com/docs/api-reference/emails/send-batch-emails). It refuses attachments and `scheduled_at`,
which the queue never uses. In its default (strict) validation mode one invalid message refuses the whole call with
a 4xx and nothing is sent; the queue then splits the batch. The `Idempotency-Key` header works as for single sends.
`ResendError.kind` says what an error answer means for the emails in the call; the transport raises it as the
provider-neutral `SendError` (integrations/email_transport.py).
"""

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests
from django.conf import settings

from integrations.email_transport import SendError, SendErrorKind, kind_for_status
from integrations.http import ProviderError, session_build

MAX_BATCH_SIZE = 100


# https://resend.com/docs/api-reference/errors
CONFIGURATION_ERROR_NAMES = frozenset({"daily_quota_exceeded", "monthly_quota_exceeded"})
KEY_ERROR_NAMES = frozenset({"invalid_idempotent_request", "invalid_idempotency_key"})


class ResendError(ProviderError):
    provider = "resend"

    @property
    def name(self) -> str:
        """Resend's error name (`{"statusCode", "name", "message"}`), "" when the answer was not Resend's JSON."""
        try:
            body = json.loads(self.body)
        except ValueError:
            return ""
        return str(body.get("name") or "") if isinstance(body, dict) else ""

    @property
    def kind(self) -> SendErrorKind:
        """What this answer means for the emails in the call (docs/automations.md, "Which answer means what")."""
        if self.name in KEY_ERROR_NAMES:
            return SendErrorKind.KEY_CONFLICT
        if self.name in CONFIGURATION_ERROR_NAMES:
            return SendErrorKind.CONFIGURATION
        # Otherwise the status decides; 409 is concurrent_idempotent_requests (the first call with this key is still
        # being processed), and a gateway's 502/504 may come after Resend accepted the call: both may have been sent.
        return kind_for_status(self.status)

    def pause_cause(self) -> str:
        """What staff read while sending is paused for this answer (a CONFIGURATION one)."""
        try:
            detail = json.loads(self.body).get("message", "")
        except (ValueError, AttributeError):
            detail = ""
        if self.name in CONFIGURATION_ERROR_NAMES:
            hint = "Resend's sending quota is used up"
        elif self.name == "validation_error":
            hint = "Resend refuses our sender (is the sending domain still verified?)"
        else:
            hint = "Resend refuses our API key (revoked or rotated? check RESEND_API_KEY)"
        return f"{hint}: HTTP {self.status} {self.name or 'no error name'}" + (f", {detail}" if detail else "")

    def as_send_error(self) -> SendError:
        """The provider-neutral error the email queue understands."""
        kind = self.kind
        return SendError(
            kind=kind,
            provider=self.provider,
            status=self.status,
            name=self.name,
            detail=self.body,
            retry_after=self.retry_after,
            pause_cause=self.pause_cause() if kind == SendErrorKind.CONFIGURATION else "",
        )


def request_body(messages: list[dict[str, Any]]) -> bytes:
    """The exact bytes of a batch call: a pure function of the stored messages, so every retry of a batch sends the
    same bytes under its key. (A JSON column hands the messages back with its own key order, so the order in which
    they were built cannot be what decides the bytes.)"""
    return json.dumps(messages, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class ResendClient:
    api_url: str
    api_key: str
    timeout: tuple[float, float] = (3.05, 15)

    rate_limit: int | None = None  # requests per second, from the last `ratelimit-limit` header seen

    def __post_init__(self) -> None:
        if not self.api_url.endswith("/"):
            self.api_url += "/"
        self.session = session_build(
            timeout=self.timeout,
            headers={"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"},
        )

    @classmethod
    def from_settings(cls) -> "ResendClient":
        anymail = settings.ANYMAIL
        api_key = anymail.get("RESEND_API_KEY") or settings.RESEND_API_KEY
        if not api_key:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured("Sending through Resend needs RESEND_API_KEY (see .env.example).")
        return cls(
            api_url=anymail.get("RESEND_API_URL") or "https://api.resend.com/",
            api_key=api_key,
            timeout=(3.05, settings.AUTOMATIONS_SEND_TIMEOUT),
        )

    def batch_send(self, *, messages: list[dict[str, Any]], idempotency_key: str) -> list[str]:
        """Send up to 100 messages in one call; returns Resend's email ids in message order. Raises ResendError."""
        if not 0 < len(messages) <= MAX_BATCH_SIZE:
            raise ValueError(f"A batch holds 1 to {MAX_BATCH_SIZE} messages, not {len(messages)}")
        try:
            response = self.session.post(
                urljoin(self.api_url, "emails/batch"),
                data=request_body(messages),
                headers={"Idempotency-Key": idempotency_key, "Content-Type": "application/json"},
            )
        except requests.RequestException as exc:
            raise ResendError.from_transport(exc) from exc
        limit = response.headers.get("ratelimit-limit")
        if limit and limit.isdigit() and int(limit) > 0:
            self.rate_limit = int(limit)  # the team's real limit, read at run time
        if not 200 <= response.status_code < 300:
            raise ResendError.from_response(response)
        try:
            ids = [entry["id"] for entry in response.json()["data"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ResendError(status=response.status_code, body=f"Unexpected answer: {response.text[:500]}") from exc
        if len(ids) != len(messages):
            raise ResendError(status=response.status_code, body=f"{len(ids)} ids for {len(messages)} messages")
        return ids
