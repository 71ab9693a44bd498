"""A fake Resend API on 127.0.0.1 (POST /emails, POST /emails/batch) and a Svix signer for tracking webhooks.

    with FakeResend() as resend:
        resend.rate_limit(per_second=5)            # the harness's switches: 429 + Retry-After beyond 5/s
        resend.processing_delay = 1.5              # Resend takes this long to handle a call (the key is "in progress")
        resend.processing_gate = threading.Event() # ...or until the test sets the event
        resend.accept_then_fail(504)               # the next call is sent, then a gateway answers 504
        resend.revoke_key()                        # 403 invalid_api_key until resend.restore_key()
        resend.answer_late_next(seconds=2)         # the next call is handled, its answer comes 2 s later
        resend.random_faults(late=0.05, late_seconds=16, errors=0.05, seed=1)  # a share of calls, at random
        resend.keep_bodies = False                 # a 100,000-email bench keeps refs and addresses, not the HTML
        ...
        assert resend.duplicates() == {}           # no email (by its X-Entity-Ref-ID) delivered twice
        assert resend.copies_to("a@example.com") == 1

It answers the way Resend documents (https://resend.com/docs/api-reference/errors,
https://resend.com/docs/dashboard/emails/idempotency-keys), with the bodies kept in resend_fixtures/:

- Idempotency-Key: a key that was sent is remembered (24 h for Resend, the fake's lifetime here). The same key with
  the same payload (byte for byte) gets the first answer and delivers nothing; with another payload it gets 409
  `invalid_idempotent_request`; while the first request with the key is still being handled, 409
  `concurrent_idempotent_requests`. A refused call (4xx, 5xx) is not remembered: nothing was sent under the key.
- Strict batch validation: one invalid message refuses the whole call with 422 and nothing is delivered.
- `ratelimit-limit`, `ratelimit-remaining` and `ratelimit-reset` on every answer, `retry-after` on 429.
"""

import base64
import hashlib
import hmac
import itertools
import json
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.fakes.server import FakeRequest, FakeResponse, FakeServer, route

SIGNING_SECRET = "whsec_" + base64.b64encode(b"modready-test-signing-secret-32b").decode()
FIXTURES = Path(__file__).parent / "resend_fixtures"
ERRORS = json.loads((FIXTURES / "api_errors.json").read_text())
# What the fake reports as the team's limit when no rate limit is switched on (Resend always sends the header).
UNLIMITED_REPORTED = 1000


def error(name: str, message: str | None = None) -> FakeResponse:
    body = dict(ERRORS[name])
    if message:
        body["message"] = message
    return FakeResponse(body["statusCode"], body)


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
        self.idempotent_answers: dict[str, tuple[str, FakeResponse]] = {}
        self.in_progress: set[str] = set()
        self.idempotent_repeats = 0
        self.idempotency_conflicts = 0
        self.processing_delay = 0.0
        # While set to an unset Event, calls stay "in progress" until a test sets it (at most 30 s).
        self.processing_gate: threading.Event | None = None
        self.auth_failure: str | None = None
        self._after_faults: deque[int] = deque()
        self._late_next: deque[float] = deque()
        self._random = random.Random(0)
        self.late_share = self.error_share = 0.0
        self.late_seconds = 0.0
        self.late_answers = self.random_errors = 0
        self.keep_bodies = True
        self._ids = itertools.count(1)

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.delivered.clear()
            self.idempotent_answers.clear()
            self.in_progress.clear()
            self.idempotent_repeats = self.idempotency_conflicts = 0
            self.processing_delay = 0.0
            self.processing_gate = None
            self.auth_failure = None
            self._after_faults.clear()
            self._late_next.clear()
            self.late_share = self.error_share = 0.0
            self.late_answers = self.random_errors = 0

    # --- switches -------------------------------------------------------------------------------------------------
    def accept_then_fail(self, status: int = 504, *, times: int = 1) -> None:
        """The next `times` calls are handled (delivered, key remembered), then a gateway answers `status`."""
        with self.lock:
            self._after_faults.extend([status] * times)

    def answer_late_next(self, *, seconds: float, times: int = 1) -> None:
        """The next `times` calls are handled (delivered, key remembered) and answered `seconds` later: past the
        client's read timeout, the client cannot tell whether anything was sent."""
        with self.lock:
            self._late_next.extend([seconds] * times)

    def random_faults(self, *, late: float = 0.0, late_seconds: float = 16.0, errors: float = 0.0, seed: int = 0):
        """Resend on a bad day: a share of calls answered `late_seconds` late (after being handled), another share
        refused with a 500 (nothing sent, the key not remembered). Drawn from a seeded generator."""
        with self.lock:
            self._random = random.Random(seed)
            self.late_share, self.late_seconds, self.error_share = late, late_seconds, errors

    def _draw_fault(self) -> tuple[float, bool]:
        """(seconds to hold the answer, whether to refuse with a 500) for the call being handled."""
        with self.lock:
            if self._late_next:
                self.late_answers += 1
                return self._late_next.popleft(), False
            draw = self._random.random()
            if draw < self.error_share:
                self.random_errors += 1
                return 0.0, True
            if draw < self.error_share + self.late_share:
                self.late_answers += 1
                return self.late_seconds, False
        return 0.0, False

    def revoke_key(self) -> None:
        """The API key was revoked or rotated: 403 invalid_api_key until restore_key()."""
        self.auth_failure = "invalid_api_key"

    def unverify_domain(self) -> None:
        """The sending domain lost its verification: 403 validation_error until restore_key()."""
        self.auth_failure = "domain_not_verified"

    def restore_key(self) -> None:
        self.auth_failure = None

    # --- provider shapes --------------------------------------------------------------------------------------------
    def error_body(self, status: int) -> Any:
        names = {
            400: "validation_error",
            401: "missing_api_key",
            403: "invalid_api_key",
            409: "invalid_idempotent_request",
        }
        names |= {422: "validation_error", 429: "rate_limit_exceeded", 500: "internal_server_error"}
        name = names.get(status, "application_error")
        return {**ERRORS[name], "statusCode": status} if name in ERRORS else {"statusCode": status, "name": name}

    def _handle(self, request: FakeRequest) -> FakeResponse | None:
        response = super()._handle(request)
        if response is not None:
            response.headers = {**response.headers, **self._rate_headers()}
        return response

    def _rate_headers(self) -> dict[str, str]:
        # https://resend.com/docs/api-reference/introduction#rate-limit
        with self.lock:
            limit = self._rate_limit or UNLIMITED_REPORTED
            now = time.monotonic()
            used = sum(1 for t in self._recent if now - t < 1.0)
        return {"ratelimit-limit": str(limit), "ratelimit-remaining": str(max(0, limit - used)), "ratelimit-reset": "1"}

    # --- API -------------------------------------------------------------------------------------------------------
    @route("POST", "/emails")
    def send_email(self, request: FakeRequest) -> FakeResponse:
        return self._idempotent(request, lambda: self._deliver(request, [request.json()], batch=False))

    @route("POST", "/emails/batch")
    def send_batch(self, request: FakeRequest) -> FakeResponse:
        return self._idempotent(request, lambda: self._deliver(request, request.json(), batch=True))

    def _idempotent(self, request: FakeRequest, handle) -> FakeResponse:
        key = request.header("idempotency-key")
        digest = hashlib.sha256(request.body).hexdigest()
        with self.lock:
            refused = self._refuse_auth(request)
            if refused is not None:
                return refused
            if key in self.in_progress:
                return error("concurrent_idempotent_requests")
            if key and key in self.idempotent_answers:
                first_digest, answer = self.idempotent_answers[key]
                if first_digest != digest:
                    self.idempotency_conflicts += 1
                    return error("invalid_idempotent_request")
                self.idempotent_repeats += 1
                return self._after(answer)
            late, refuse = self._draw_fault()
            if refuse:
                return error("internal_server_error")
            if key:
                self.in_progress.add(key)
        try:
            if self.processing_delay:
                time.sleep(self.processing_delay)  # Resend still working on it: a repeat now gets 409
            if self.processing_gate is not None:
                self.processing_gate.wait(30)
            with self.lock:  # held across delivery and remembering: two racing repeats must not both deliver
                response = handle()
                if key and 200 <= response.status < 300:
                    self.idempotent_answers[key] = (digest, response)
        finally:
            with self.lock:
                self.in_progress.discard(key)
        if late:
            time.sleep(late)  # handled and remembered; only the answer is late
        return self._after(response)

    def _after(self, response: FakeResponse) -> FakeResponse:
        with self.lock:
            status = self._after_faults.popleft() if self._after_faults else None
        if status is None:
            return response
        return FakeResponse(
            status, body=b"<html><body>504 Gateway Time-out</body></html>", headers={"Content-Type": "text/html"}
        )

    def _refuse_auth(self, request: FakeRequest) -> FakeResponse | None:
        if request.header("authorization") in ("", "Bearer "):
            return error("missing_api_key")
        if self.auth_failure:
            return error(self.auth_failure)
        return None

    def _deliver(self, request: FakeRequest, messages: Any, *, batch: bool) -> FakeResponse:
        if not isinstance(messages, list) or not 0 < len(messages) <= 100:
            return error("validation_error", "The batch must contain 1 to 100 emails.")
        for index, message in enumerate(messages):
            problem = self._invalid(message, batch=batch)
            if problem:
                where = f"data[{index}]: " if batch else ""
                return error("validation_error", where + problem)
        key = request.header("idempotency-key")
        ids = []
        for message in messages:
            email_id = f"fake-{next(self._ids):08d}"
            if not self.keep_bodies:
                message = {"to": message.get("to"), "headers": message.get("headers") or {}}
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

    def copies_to(self, address: str) -> int:
        """How many emails this recipient got: what a customer would count in their inbox."""
        return len(self.delivered_to(address))

    def copies_per_recipient(self) -> Counter:
        with self.lock:
            return Counter(to for email in self.delivered for to in email.to)

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
