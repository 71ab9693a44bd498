"""A fake Resend API on 127.0.0.1 (POST /emails, POST /emails/batch) and a Svix signer for tracking webhooks.

    with FakeResend() as resend:
        resend.rate_limit(per_second=5)            # the harness's switches: 429 + Retry-After beyond 5/s
        ...
        assert resend.duplicates() == {}           # no email (by its X-Entity-Ref-ID) delivered twice

Idempotency-Key as Resend documents it (https://resend.com/docs/dashboard/emails/idempotency-keys): a repeat of a
key returns the first answer and delivers nothing. The batch endpoint validates strictly: one invalid message
refuses the whole call with 422 and nothing is delivered.
"""

import base64
import hashlib
import hmac
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer, route

SIGNING_SECRET = "whsec_" + base64.b64encode(b"modready-test-signing-secret-32b").decode()


@dataclass
class DeliveredEmail:
    id: str
    message: dict[str, Any]
    idempotency_key: str
    delivered_at: float = field(default_factory=time.monotonic)

    @property
    def to(self) -> list[str]:
        return self.message.get("to") or []

    @property
    def ref(self) -> str:
        """Our queue item's key (the X-Entity-Ref-ID header the queue sets)."""
        return (self.message.get("headers") or {}).get("X-Entity-Ref-ID", "")


class FakeResend(FakeServer):
    name = "resend"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.delivered: list[DeliveredEmail] = []
        self.idempotent_answers: dict[str, FakeResponse] = {}
        self.idempotent_repeats = 0
        self._ids = itertools.count(1)

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.delivered.clear()
            self.idempotent_answers.clear()
            self.idempotent_repeats = 0

    def error_body(self, status: int) -> Any:
        names = {429: "rate_limit_exceeded", 422: "validation_error", 401: "missing_api_key"}
        return {"statusCode": status, "name": names.get(status, "application_error"), "message": f"Injected {status}"}

    # --- API -------------------------------------------------------------------------------------------------------
    @route("POST", "/emails")
    def send_email(self, request: FakeRequest) -> FakeResponse:
        return self._idempotent(request, lambda: self._deliver(request, [request.json()], batch=False))

    @route("POST", "/emails/batch")
    def send_batch(self, request: FakeRequest) -> FakeResponse:
        return self._idempotent(request, lambda: self._deliver(request, request.json(), batch=True))

    def _idempotent(self, request: FakeRequest, handle) -> FakeResponse:
        key = request.header("idempotency-key")
        with self.lock:  # held across check and delivery: two racing repeats must not both deliver
            if key and key in self.idempotent_answers:
                self.idempotent_repeats += 1
                return self.idempotent_answers[key]
            response = handle()
            if key and response.status < 500:
                self.idempotent_answers[key] = response
            return response

    def _deliver(self, request: FakeRequest, messages: Any, *, batch: bool) -> FakeResponse:
        if request.header("authorization") in ("", "Bearer "):
            return FakeResponse(401, self.error_body(401))
        if not isinstance(messages, list) or not 0 < len(messages) <= 100:
            return FakeResponse(422, {"statusCode": 422, "name": "validation_error", "message": "1 to 100 emails"})
        for index, message in enumerate(messages):
            problem = self._invalid(message, batch=batch)
            if problem:
                where = f"data[{index}]: " if batch else ""
                return FakeResponse(422, {"statusCode": 422, "name": "validation_error", "message": where + problem})
        key = request.header("idempotency-key")
        ids = []
        for message in messages:
            email_id = f"fake-{next(self._ids):08d}"
            self.delivered.append(DeliveredEmail(id=email_id, message=message, idempotency_key=key))
            ids.append(email_id)
        return FakeResponse(200, {"data": [{"id": i} for i in ids]} if batch else {"id": ids[0]})

    @staticmethod
    def _invalid(message: Any, *, batch: bool) -> str:
        if not isinstance(message, dict):
            return "Invalid message"
        for required in ("from", "to", "subject"):
            if not message.get(required):
                return f"Missing `{required}` field."
        for address in message["to"]:
            local, _, domain = address.rpartition("<")[-1].rstrip(">").partition("@")
            if not local or "." not in domain:
                return f"Invalid `to` field: {address}"
        if batch and ("attachments" in message or "scheduled_at" in message):
            return "Attachments and scheduled sends are not supported in batch emails."
        return ""

    # --- assertions helpers ---------------------------------------------------------------------------------------
    def delivered_to(self, address: str) -> list[DeliveredEmail]:
        with self.lock:
            return [email for email in self.delivered if address in email.to]

    def duplicates(self) -> dict[str, int]:
        """Emails (by our queue item key) delivered more than once."""
        with self.lock:
            counts = Counter(email.ref for email in self.delivered)
        return {ref: n for ref, n in counts.items() if n > 1}


def svix_sign(body: bytes, *, secret: str = SIGNING_SECRET, msg_id: str, timestamp: int | None = None) -> dict:
    """The headers Svix puts on a webhook: v1 = base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {"svix-id": msg_id, "svix-timestamp": str(timestamp), "svix-signature": f"v1,{signature}"}


def resend_event(
    event_type: str, *, email_id: str, to: str, created_at: str, click_url: str = "", user_agent: str = "", **data
) -> dict:
    """A tracking payload in Resend's shape (https://resend.com/docs/dashboard/webhooks/event-types)."""
    body = {
        "type": event_type,
        "created_at": created_at,
        "data": {
            "email_id": email_id,
            "from": "ModReady <hello@modready.example>",
            "to": [to],
            "subject": "Welcome to ModReady",
            "created_at": created_at,
            **data,
        },
    }
    if event_type == "email.clicked":
        body["data"]["click"] = {"link": click_url, "userAgent": user_agent, "ipAddress": "203.0.113.9"}
    # The shapes of https://resend.com/docs/webhooks/emails/bounced, .../failed and .../suppressed; a test passes
    # bounce=/failed=/suppressed= to change them.
    if event_type == "email.bounced":
        body["data"].setdefault(
            "bounce",
            {
                "message": "The recipient's email provider sent a hard bounce message.",
                "type": "Permanent",
                "subType": "General",
            },
        )
    if event_type == "email.failed":
        body["data"].setdefault("failed", {"reason": "reached_daily_quota"})
    if event_type == "email.suppressed":
        body["data"].setdefault(
            "suppressed",
            {
                "message": "Resend has suppressed sending to this address because it is on the account-level "
                "suppression list.",
                "type": "OnAccountSuppressionList",
            },
        )
    return body


def signed_webhook(
    client, payload: dict, *, msg_id: str, secret: str = SIGNING_SECRET, path="/anymail/resend/tracking/"
):
    body = json.dumps(payload).encode()
    headers = {
        f"HTTP_{k.upper().replace('-', '_')}": v for k, v in svix_sign(body, secret=secret, msg_id=msg_id).items()
    }
    return client.post(path, data=body, content_type="application/json", **headers)
