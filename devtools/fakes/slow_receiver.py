"""A webhook receiver on 127.0.0.1 that answers badly on purpose, written on raw sockets (the fake-server harness
always answers promptly and whole):

- `trickle_headers`: "HTTP/1.1 200 OK" then a header one byte every `interval` seconds, for up to `give_up_after`
  seconds, so each read of the client sees data long before its per-read timeout;
- `trickle_body`: prompt 200 headers, then the body one byte every `interval` seconds;
- `huge`: 200 with a `size`-byte body (200 MB by default) streamed from one reused 64 KB block, as fast as the
  client reads it.

The server stops when the client closes the connection, or after `give_up_after` seconds.
"""

import contextlib
import socket
import ssl
import threading
import time

BLOCK = b"x" * 65536


class SlowReceiver:
    def __init__(
        self,
        mode: str,
        *,
        interval: float = 0.2,
        give_up_after: float = 30.0,
        size: int = 200 * 2**20,
        tls: ssl.SSLContext | None = None,
    ):
        assert mode in ("trickle_headers", "trickle_body", "huge")
        self.mode, self.interval, self.give_up_after, self.size = mode, interval, give_up_after, size
        self.tls = tls  # a server-side context: the trickle comes after a prompt TLS handshake
        self.requests = 0
        self.bytes_sent = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"slow-receiver-{mode}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> "SlowReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (closing alone does not)
        self._listener.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            if self.tls is not None:
                connection = self.tls.wrap_socket(connection, server_side=True)
        except (OSError, ssl.SSLError):
            connection.close()
            return
        with connection:
            try:
                self._read_request(connection)
                self.requests += 1
                getattr(self, f"_{self.mode}")(connection)
            except OSError:
                pass  # the client hung up: what we are testing for

    @staticmethod
    def _read_request(connection: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                raise OSError("closed before the request ended")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        while len(body) < length:
            body += connection.recv(65536)

    def _trickle(self, connection: socket.socket, prefix: bytes, byte: bytes, suffix: bytes) -> None:
        connection.sendall(prefix)
        ends = time.monotonic() + self.give_up_after
        while time.monotonic() < ends and not self._stopping.is_set():
            connection.sendall(byte)
            self.bytes_sent += 1
            time.sleep(self.interval)
        connection.sendall(suffix)

    def _trickle_headers(self, connection: socket.socket) -> None:
        self._trickle(connection, b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a", b"\r\nContent-Length: 2\r\n\r\nok")

    def _trickle_body(self, connection: socket.socket) -> None:
        size = int(self.give_up_after / self.interval) + 10
        self._trickle(connection, f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode(), b"a", b"")

    def _huge(self, connection: socket.socket) -> None:
        connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {self.size}\r\n\r\n".encode())
        while self.bytes_sent < self.size and not self._stopping.is_set():
            block = BLOCK[: self.size - self.bytes_sent]
            connection.sendall(block)
            self.bytes_sent += len(block)
