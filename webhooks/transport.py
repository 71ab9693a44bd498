"""The HTTP session a webhook send uses: it connects to the address `addresses.target_resolve` checked, and nowhere
else.

`requests` would otherwise resolve the endpoint's name again when it connects, and a DNS answer that changed since the
check (DNS rebinding) would reach an internal address. The adapter below keeps the URL, so the `Host` header, TLS
server name indication and certificate verification are all for the endpoint's hostname, but hands urllib3 the
checked IP address as the host to connect to. With https the certificate must still be valid for the hostname
(`server_hostname` drives both SNI and the standard library's hostname check; tests/webhooks/test_transport.py shows a
certificate for another name is refused). The session ignores proxy environment variables (`trust_env = False`: a
proxy would resolve the name itself), and the caller never follows redirects.

One send has one wall-clock deadline (`Deadline`), connect plus the whole answer: a timeout per socket read does not
bound a receiver that trickles a byte every few seconds. When the deadline passes, a timer shuts the connection's
socket down (through a duplicate of its descriptor, so the TLS handshake is covered too), and whatever read is
waiting returns at once. The answer is streamed: the first `KEEP_BYTES` are kept for the attempt log, reading stops
at `READ_LIMIT_BYTES`, and the rest is never read (a 200 MB answer costs 64 KB).
"""

import contextlib
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
import requests.structures
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection

from integrations.http import session_build

from .addresses import Target

KEEP_BYTES = 1024  # of the answer, kept in the attempt log
READ_LIMIT_BYTES = 64 * 1024  # reading the answer stops here; the connection is then closed
CONNECT_TIMEOUT = 3.05


class Deadline:
    """A wall-clock limit for one send: when it passes, every socket the send opened is shut down."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def watch(self, sock: socket.socket) -> None:
        # A duplicate descriptor of the same socket: shutting it down ends reads on the original, even once the TLS
        # wrapper has taken the original over, and it is ours to close (no risk of hitting a reused descriptor).
        with self._lock:
            duplicate = sock.dup()
            self._sockets.append(duplicate)
            if self.expired:
                _shutdown(duplicate)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side
        sock.shutdown(socket.SHUT_RDWR)


class _WatchedConnection:
    """urllib3 connection that hands its socket to the send's Deadline as soon as it exists."""

    def __init__(self, *args, deadline: Deadline, **kwargs):
        self.deadline = deadline
        super().__init__(*args, **kwargs)

    def _new_conn(self):
        sock = super()._new_conn()
        self.deadline.watch(sock)
        return sock


class _WatchedHTTPConnection(_WatchedConnection, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class PinnedAddressAdapter(HTTPAdapter):
    """Sends requests for `target.hostname:target.port` to `target.address`; refuses any other host."""

    def __init__(self, target: Target, deadline: Deadline | None = None):
        self.target = target
        self.deadline = deadline
        super().__init__(max_retries=0)

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        pool = super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
        if self.deadline is not None:
            pool.ConnectionCls = _WatchedHTTPSConnection if pool.scheme == "https" else _WatchedHTTPConnection
            pool.conn_kw["deadline"] = self.deadline
        return pool

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.hostname != self.target.hostname or port != self.target.port:
            target = f"{self.target.hostname}:{self.target.port}"
            raise requests.exceptions.InvalidURL(f"This session only sends to {target}")
        # urllib3 would name the IP address in the Host header; the receiver expects the URL's host.
        request.headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
        return super().send(request, **kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        host_params["host"] = self.target.address
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self.target.hostname  # SNI and the certificate's name check
        return host_params, pool_kwargs


def pinned_session(
    *, target: Target, timeout: tuple[float, float], deadline: Deadline | None = None
) -> requests.Session:
    session = session_build(timeout=timeout)
    session.trust_env = False
    session.max_redirects = 0
    adapter = PinnedAddressAdapter(target, deadline)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class DeadlinePassed(requests.Timeout):
    """The send's wall-clock deadline passed before the answer's status line and headers arrived."""


@dataclass
class Answer:
    status_code: int
    headers: requests.structures.CaseInsensitiveDict
    body: str  # the first KEEP_BYTES, decoded leniently
    note: str  # why the body was cut short, if it was


def post_within_deadline(*, target: Target, url: str, body: bytes, headers: dict[str, str], seconds: float) -> Answer:
    """POST `body` to `url` at `target`'s address and read at most READ_LIMIT_BYTES of the answer, all within
    `seconds` of wall-clock time. Raises DeadlinePassed, or the requests error of a failed connection, for no answer.
    """
    headers = {**headers, "Accept-Encoding": "identity"}  # the bytes counted are the bytes received
    timeout = (min(CONNECT_TIMEOUT, seconds), seconds)
    deadline = Deadline(seconds)
    with deadline, pinned_session(target=target, timeout=timeout, deadline=deadline) as session:
        try:
            response = session.post(url, data=body, headers=headers, allow_redirects=False, stream=True)
        except requests.RequestException as exc:
            if deadline.expired:
                raise DeadlinePassed(f"no answer within {seconds:g} s") from exc
            raise
        if deadline.expired:  # http.client takes a connection closed mid-headers for their end: not an answer
            response.close()
            raise DeadlinePassed(f"no complete status line and headers within {seconds:g} s")
        try:
            kept, note = _read_capped(response, deadline)
        finally:
            response.close()  # whatever was not read is dropped with the connection
    return Answer(
        status_code=response.status_code,
        headers=response.headers,
        body=kept.decode("utf-8", errors="replace"),
        note=note,
    )


def _read_capped(response: requests.Response, deadline: Deadline) -> tuple[bytes, str]:
    kept = bytearray()
    received = 0
    try:
        while received < READ_LIMIT_BYTES:
            chunk = response.raw.read(min(8192, READ_LIMIT_BYTES - received), decode_content=False)
            if not chunk:
                break
            received += len(chunk)
            if len(kept) < KEEP_BYTES:
                kept += chunk[: KEEP_BYTES - len(kept)]
    except Exception as exc:  # urllib3, http.client or socket errors once the deadline shut the socket down
        if deadline.expired:
            return bytes(kept), f"the answer was cut off at the {deadline.seconds:g} s deadline"
        return bytes(kept), f"the answer broke off ({type(exc).__name__})"
    if deadline.expired:
        return bytes(kept), f"the answer was cut off at the {deadline.seconds:g} s deadline"
    if received >= READ_LIMIT_BYTES:
        return bytes(kept), f"stopped reading the answer after {READ_LIMIT_BYTES // 1024} KB"
    return bytes(kept), ""
