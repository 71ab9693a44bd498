"""The one way our clients talk HTTP to outside systems.

Every provider client (integrations/<provider>/client.py, billing's Stripe access aside) builds its session here:
a `(connect, read)` timeout on every request, our User-Agent, and helpers to read `Retry-After` so callers can
honour rate limits. Each provider raises its own subclass of `ProviderError`, raised `from` the transport error.
Tokens and secrets never go into an error message or a log line.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests

USER_AGENT = "ModReady-CRM/1.0 (+https://modready.example)"
DEFAULT_TIMEOUT = (3.05, 15)  # (connect, read) seconds


class TimeoutSession(requests.Session):
    """A Session whose requests always carry a timeout (requests has none by default)."""

    def __init__(self, timeout: tuple[float, float] = DEFAULT_TIMEOUT):
        super().__init__()
        self.default_timeout = timeout
        self.headers["User-Agent"] = USER_AGENT

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, **kwargs)


def session_build(*, timeout: tuple[float, float] = DEFAULT_TIMEOUT, headers: dict | None = None) -> TimeoutSession:
    session = TimeoutSession(timeout=timeout)
    if headers:
        session.headers.update(headers)
    return session


@dataclass
class ProviderError(Exception):
    """A provider answered with an error, or could not be reached (status 0)."""

    status: int
    body: str = ""
    retry_after: float | None = None

    provider = "provider"

    def __str__(self) -> str:
        return f"{self.provider} error {self.status}: {self.body[:300]}"

    @property
    def is_retryable(self) -> bool:
        """Rate limits, server errors and transport failures may succeed later; other 4xx will not."""
        return self.status == 0 or self.status == 429 or self.status >= 500

    @classmethod
    def from_response(cls, response: requests.Response):
        return cls(status=response.status_code, body=response.text[:2000], retry_after=retry_after_seconds(response))

    @classmethod
    def from_transport(cls, exc: Exception):
        """No answer at all: a timeout, a refused or dropped connection (or a local backend's I/O error)."""
        return cls(status=0, body=f"{type(exc).__name__}: {exc}"[:2000])


def retry_after_seconds(response: requests.Response) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), if the response has one."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
