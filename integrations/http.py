"""The one way our clients talk HTTP to outside systems.

Every provider client (integrations/<provider>/client.py, billing's Stripe access aside) builds its session here:
a `(connect, read)` timeout on every request, our User-Agent, and helpers to read `Retry-After` so callers can
honour rate limits. Each provider raises its own subclass of `ProviderError`, raised `from` the transport error.
Tokens and secrets never go into an error message or a log line.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests

from core.retry import backoff_seconds

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
    call: str = ""  # which call failed, e.g. "contacts.edit"

    provider = "provider"

    def __str__(self) -> str:
        where = f" {self.call}" if self.call else ""
        return f"{self.provider}{where} error {self.status}: {self.body[:300]}"

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


class ApiClient:
    """A JSON API client on the shared session: one method, `request`, that names the call, retries only what is
    safe, honours Retry-After, and raises the provider's error.

    - A 429 means the provider did not act, so any call waits Retry-After (up to `max_wait` seconds; longer waits are
      raised, and the caller's task backs off) and tries again.
    - A transport failure or a 5xx may have acted: only idempotent calls (GET, or those the caller marks so) are
      retried here. Everything else is raised with status 0 or 5xx and left to the caller, who knows how to check.
    """

    error_class: type[ProviderError] = ProviderError
    retries = 2
    max_wait = 30.0
    backoff = 0.5

    def __init__(self, *, base_url: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT, headers: dict | None = None):
        self.base_url = base_url.rstrip("/")
        self.session = session_build(timeout=timeout, headers={"Accept": "application/json", **(headers or {})})

    def prepare(self, call: str) -> None:
        """Hook before each attempt (a token refresh)."""

    def backoff_wait(self, attempt: int) -> float:
        """The wait after failed attempt `attempt` (counted from 0): backoff, then twice that, ... (core/retry.py)."""
        return backoff_seconds(attempt + 1, base=self.backoff, cap=self.max_wait)

    def wait_seconds(self, response: requests.Response) -> float | None:
        return retry_after_seconds(response)

    def request(
        self, call: str, method: str, path: str, *, idempotent: bool | None = None, **kwargs
    ) -> requests.Response:
        if idempotent is None:
            idempotent = method.upper() in {"GET", "HEAD"}
        url = f"{self.base_url}/{path.lstrip('/')}"
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            self.prepare(call)
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.RequestException as exc:
                if idempotent and not last:
                    time.sleep(self.backoff_wait(attempt))
                    continue
                error = self.error_class.from_transport(exc)
                error.call = call
                raise error from exc
            if response.status_code == 429:
                wait = self.wait_seconds(response)
                wait = self.backoff_wait(attempt) if wait is None else wait
                if not last and wait <= self.max_wait:
                    time.sleep(wait)
                    continue
            elif response.status_code >= 500 and idempotent and not last:
                time.sleep(self.backoff_wait(attempt))
                continue
            if not 200 <= response.status_code < 300:
                error = self.error_class.from_response(response)
                error.call = call
                raise error
            return response
        raise AssertionError("unreachable")  # pragma: no cover


def json_or_error(response: requests.Response, error_class: type[ProviderError], call: str):
    """The JSON body of a 2xx answer, or the provider's error when it is not JSON."""
    try:
        return response.json()
    except ValueError as exc:
        raise error_class(status=response.status_code, body=f"Not JSON: {response.text[:300]}", call=call) from exc


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
