"""The email-provider seam: what the email queue (automations) asks of a provider, in the provider's absence.

A provider package (integrations/resend/, integrations/django_mail/) supplies a transport class that satisfies
`EmailTransport`, raises `SendError` (never its own exception) and turns its tracking webhook into `TrackingEvent`s
handed to `tracking_event_deliver`. automations picks the transport by AUTOMATIONS_EMAIL_TRANSPORT
(automations/transports.py, one line per provider) and knows nothing else about it.

The message shape every transport takes is a plain dict, stored as it is in an `EmailBatch` so every retry sends the
same bytes: `{"from", "to": [...], "subject", "html", "text", "headers": {...}}`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class SendErrorKind(StrEnum):
    """What a failed call tells us about the emails in it (docs/automations.md, "Which answer means what")."""

    UNKNOWN = "unknown"  # may have been sent: retry the same payload under the same key, never change the batch
    RATE_LIMITED = "rate_limited"  # refused before any work: wait retry_after, then the same call again
    REFUSED = "refused"  # the provider rejected the whole call, nothing was sent: split the batch or fail the email
    CONFIGURATION = "configuration"  # our key, domain or quota (the provider is unavailable to us): pause sending
    KEY_CONFLICT = "key_conflict"  # the idempotency key was misused: our bug; never re-send under a new key


def kind_for_status(status: int) -> SendErrorKind:
    """The meaning of an HTTP status alone (0: no answer at all), for providers that say nothing more."""
    if status in (401, 403):
        return SendErrorKind.CONFIGURATION
    if status == 429:
        return SendErrorKind.RATE_LIMITED
    if status == 0 or status >= 500 or status == 409:
        return SendErrorKind.UNKNOWN
    return SendErrorKind.REFUSED


@dataclass
class SendError(Exception):
    """A send that did not (certainly) go through, in the provider's absence.

    `name` is the provider's error name, if it gives one (stored on the batch for the admin's filter); `pause_cause`
    the sentence staff read while sending is paused for a CONFIGURATION error.
    """

    kind: SendErrorKind
    provider: str = ""
    status: int = 0
    name: str = ""
    detail: str = ""
    retry_after: float | None = None
    pause_cause: str = ""

    def __str__(self) -> str:
        return f"{self.provider or 'email provider'} error {self.status}: {self.detail[:300]}"


class EmailTransport(Protocol):
    """A provider as the queue sees it.

    - `provider`: its key in automations' registry and the account a sending pause applies to ("" when there is none
      to pause, e.g. local files); `display_name`: how staff read it ("Resend").
    - `batch_size`: how many messages one call may carry.
    - `requests_per_second`: the provider's current rate limit (0: unpaced); the queue spaces calls across workers.
    - `send_batch`: send the messages in one call under one idempotency key; the provider's message ids in order.
    - `send`: one message outside the queue (staff test sends); its message id.
    - `configuration_errors()`: Django check messages for missing settings while this transport is selected.
    `send_batch` and `send` raise `SendError`, never the provider's own exception.
    """

    provider: str
    display_name: str
    batch_size: int
    requests_per_second: float

    def send_batch(self, *, messages: list[dict[str, Any]], idempotency_key: str) -> list[str]: ...

    def send(self, *, message: dict[str, Any], idempotency_key: str = "") -> str: ...

    @classmethod
    def configuration_errors(cls) -> list: ...


@dataclass(frozen=True)
class TrackingEvent:
    """One provider tracking event (delivered, opened, bounced ...), mapped by the provider package.

    `event_type` is one of automations' EmailEventType values (sent, delivered, opened, clicked, bounced, complained,
    deferred, failed, suppressed); `bounce_type` the provider's bounce class (only
    "Permanent" means a dead address); `detail` what the provider said about a bounce, failure or suppression.
    """

    event_type: str
    provider_event_id: str
    provider: str = ""  # the transport's `provider` ("resend"): names it to staff, namespaces the event id
    provider_message_id: str = ""
    occurred_at: datetime | None = None
    url: str = ""
    user_agent: str = ""
    recipient: str = ""
    bounce_type: str = ""
    detail: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


TrackingHandler = Callable[[TrackingEvent], None]
_tracking_handlers: list[TrackingHandler] = []


def tracking_subscriber(handler: TrackingHandler) -> TrackingHandler:
    """Register a handler for every provider's tracking events (automations/subscribers.py registers one)."""
    if handler not in _tracking_handlers:
        _tracking_handlers.append(handler)
    return handler


def tracking_event_deliver(event: TrackingEvent) -> None:
    """Hand a mapped tracking event to every registered handler (each must be safe to run twice)."""
    for handler in list(_tracking_handlers):
        handler(event)
