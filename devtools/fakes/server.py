"""A small threaded HTTP server on 127.0.0.1 that plays an outside provider in tests, benchmarks and the local run.

It lives in devtools/fakes/ (not under tests/) because the local run uses the fakes too: bin/run serves the Stripe
and Discord stand-ins (devtools/fakes/stripe/standin.py, devtools/fakes/discord/standin.py) so that `manage.py
demo_journey` and the support screens work offline; tests and bench/ import the same modules. Each provider's fake is
a subclass in its own module or package (devtools/fakes/resend.py, devtools/fakes/stripe/server.py, ...) that
registers its routes with `@route(...)`. The harness gives every fake the same switches for failure:

    with FakeResend() as resend:                  # starts on a free port, stops on exit
        settings.ANYMAIL["RESEND_API_URL"] = resend.url
        resend.fail_next(503, times=2)            # the next two requests answer 503
        resend.fail_next(429, retry_after=1)      # then a 429 with Retry-After: 1
        resend.latency = 0.15                     # every answer waits 150 ms
        resend.rate_limit(per_second=5)           # more than 5 requests in any second -> 429 + Retry-After
        resend.drop_next()                        # close the connection without answering
        resend.lose_answer_next("POST", r"/emails")          # act on the next matching request, then drop the answer
        resend.lose_answer_next("POST", r"/emails", status=504)  # ... or answer 504 instead (a gateway timing out)
        ...
        assert len(resend.requests) == 3          # every request is recorded

A handler gets a `FakeRequest` and returns a `FakeResponse`, a dict/list (200 JSON) or (status, dict).
"""

import json
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route pattern
    received_at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class FakeResponse:
    status: int = 200
    json_body: Any = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if self.json_body is not None:
            headers.setdefault("Content-Type", "application/json")
            return json.dumps(self.json_body).encode(), headers
        return self.body, headers


Handler = Callable[["FakeServer", FakeRequest], Any]


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Mark a method of a FakeServer subclass as the handler of `method` on paths matching `pattern` (a regex)."""

    def mark(handler: Handler) -> Handler:
        handler._fake_route = (method.upper(), re.compile(f"^{pattern}$"))  # type: ignore[attr-defined]
        return handler

    return mark


@dataclass
class _Fault:
    status: int
    body: Any
    headers: dict[str, str]
    drop: bool = False


class FakeServer:
    """Base class: routing, recording, and fault switches. Subclasses add routes and state."""

    name = "fake"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.lock = threading.RLock()
        self.requests: list[FakeRequest] = []
        self.latency = 0.0
        self._faults: deque[_Fault] = deque()
        self._lost_answers: list[tuple[str, re.Pattern, int | None, Any]] = []
        self._rate_limit: int | None = None
        self._rate_retry_after = 1
        self._recent: deque[float] = deque()
        self.rate_limited_count = 0
        self._routes = []
        for attr in dir(type(self)):
            spec = getattr(getattr(type(self), attr, None), "_fake_route", None)
            if spec:
                self._routes.append((spec[0], spec[1], getattr(self, attr)))
        self._server = _QuietServer((host, port), self._make_handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # lifecycle --------------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"{self.name}-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # switches ---------------------------------------------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        body: Any = None,
        headers: dict | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The next `times` requests answer `status` (with Retry-After when given) instead of being handled."""
        headers = dict(headers or {})
        if retry_after is not None:
            headers["Retry-After"] = _format_seconds(retry_after)
        with self.lock:
            for _ in range(times):
                self._faults.append(_Fault(status, body if body is not None else self.error_body(status), headers))

    def drop_next(self, *, times: int = 1) -> None:
        """The next `times` requests get their connection closed with no answer."""
        with self.lock:
            for _ in range(times):
                self._faults.append(_Fault(0, None, {}, drop=True))

    def lose_answer_next(
        self, method: str, pattern: str, *, status: int | None = None, body: Any = None, times: int = 1
    ) -> None:
        """The next `times` requests matching `method` and the path regex are handled (the provider acts), then their
        successful answer is lost: the connection closes without one, or with `status` given that answer replaces it
        (a gateway's 504 after the backend did the work). The caller cannot tell whether anything happened."""
        with self.lock:
            for _ in range(times):
                self._lost_answers.append((method.upper(), re.compile(f"^{pattern}$"), status, body))

    def rate_limit(self, *, per_second: int | None, retry_after: float = 1) -> None:
        """Allow `per_second` requests in any one-second window; answer 429 beyond. None lifts the limit."""
        with self.lock:
            self._rate_limit = per_second
            self._rate_retry_after = retry_after
            self._recent.clear()

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self._faults.clear()
            self._lost_answers.clear()
            self._rate_limit = None
            self._recent.clear()
            self.rate_limited_count = 0
            self.latency = 0.0

    # provider-specific shapes (override) -----------------------------------------------------------------------
    def error_body(self, status: int) -> Any:
        return {"error": {"message": f"Injected failure {status}", "status": status}}

    def rate_limited_response(self, retry_after: float) -> FakeResponse:
        return FakeResponse(429, self.error_body(429), headers={"Retry-After": _format_seconds(retry_after)})

    # dispatch ---------------------------------------------------------------------------------------------------
    def requests_to(self, method: str, pattern: str) -> list[FakeRequest]:
        compiled = re.compile(f"^{pattern}$")
        with self.lock:
            return [r for r in self.requests if r.method == method.upper() and compiled.match(r.path)]

    def answer(self, request: FakeRequest) -> FakeResponse:
        """Answer a request in this process, without the socket (devtools/fakes/stripe/in_process.py): the routes,
        recording and fault switches as over HTTP; a dropped connection becomes a 502."""
        return self._handle(request) or FakeResponse(502, self.error_body(502))

    def _handle(self, request: FakeRequest) -> FakeResponse | None:
        """Returns None to drop the connection."""
        with self.lock:
            self.requests.append(request)
            fault = self._faults.popleft() if self._faults else None
            limited_for = self._check_rate_limit() if fault is None else None
        if self.latency:
            time.sleep(self.latency)
        if fault is not None:
            if fault.drop:
                return None
            return FakeResponse(fault.status, fault.body, headers=fault.headers)
        if limited_for is not None:
            return self.rate_limited_response(limited_for)
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                request.params = match.groupdict()
                return self._maybe_lose(request, _as_response(handler(request)))
        return FakeResponse(404, self.error_body(404))

    def _maybe_lose(self, request: FakeRequest, response: FakeResponse) -> FakeResponse | None:
        if response.status >= 300:
            return response
        with self.lock:
            for index, (method, pattern, status, body) in enumerate(self._lost_answers):
                if method == request.method and pattern.match(request.path):
                    del self._lost_answers[index]
                    if status is None:
                        return None
                    return FakeResponse(status, body if body is not None else self.error_body(status))
        return response

    def _check_rate_limit(self) -> float | None:
        if self._rate_limit is None:
            return None
        now = time.monotonic()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        if len(self._recent) >= self._rate_limit:
            self.rate_limited_count += 1
            return max(self._rate_retry_after, 1.0 - (now - self._recent[0]))
        self._recent.append(now)
        return None

    def _make_handler(self):
        fake = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY, Nagle plus the client's delayed ACK add
            # ~40 ms to every answer, which would swamp the latencies tests and benchmarks set on purpose.
            disable_nagle_algorithm = True

            def _serve(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = FakeRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                response = fake._handle(request)
                if response is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                payload, headers = response.encode()
                self.send_response(response.status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format, *args):  # keep test output clean
                pass

        return RequestHandler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A client that goes away mid-connection (a worker stopped at the end of a benchmark) is not an error here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _as_response(result: Any) -> FakeResponse:
    if isinstance(result, FakeResponse):
        return result
    if isinstance(result, tuple):
        status, body = result
        return FakeResponse(status, body)
    return FakeResponse(200, result)


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}"
