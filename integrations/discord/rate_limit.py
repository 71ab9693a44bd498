"""Discord's rate limits as the answers report them (https://discord.com/developers/docs/topics/rate-limits): one
limiter per process shared by every client, per bucket and major parameter, plus the global pace of a bot."""

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Bucket:
    remaining: int = 1
    reset_at: float = 0.0  # time.monotonic() when the bucket refills


@dataclass
class RateLimiter:
    """Per-bucket and global limits of one bot, shared by every client of this process (threads included).

    Routes map to bucket ids as Discord reports them; a bucket's state is kept per major parameter (channel,
    guild, webhook), because Discord limits `/channels/1/messages` and `/channels/2/messages` separately.
    """

    global_per_second: float = 50.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    lock: threading.Lock = field(default_factory=threading.Lock)
    route_buckets: dict[str, str] = field(default_factory=dict)
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    global_reset_at: float = 0.0
    recent_global: deque = field(default_factory=deque)

    def wait_turn(self, route: str, major: str, *, counts_globally: bool) -> None:
        while True:
            with self.lock:
                now = self.clock()
                wait = max(0.0, self.global_reset_at - now) if counts_globally else 0.0
                bucket_id = self.route_buckets.get(route)
                bucket = self.buckets.get(f"{bucket_id}:{major}") if bucket_id else None
                if bucket and bucket.remaining <= 0 and bucket.reset_at > now:
                    wait = max(wait, bucket.reset_at - now)
                if counts_globally and not wait:
                    while self.recent_global and now - self.recent_global[0] >= 1.0:
                        self.recent_global.popleft()
                    if len(self.recent_global) >= self.global_per_second:
                        wait = 1.0 - (now - self.recent_global[0])
                if wait <= 0:
                    if bucket and bucket.reset_at > now:
                        bucket.remaining -= 1  # reserve our call until the answer tells the truth
                    if counts_globally:
                        self.recent_global.append(now)
                    return
            self.sleep(wait)

    def update(self, route: str, major: str, headers: Any) -> None:
        bucket_id = headers.get("X-RateLimit-Bucket")
        if not bucket_id:
            return
        try:
            remaining = int(headers.get("X-RateLimit-Remaining", "1"))
            reset_after = float(headers.get("X-RateLimit-Reset-After", "0"))
        except ValueError:
            return
        with self.lock:
            self.route_buckets[route] = bucket_id
            self.buckets[f"{bucket_id}:{major}"] = _Bucket(remaining=remaining, reset_at=self.clock() + reset_after)

    def hit_global(self, retry_after: float) -> None:
        with self.lock:
            self.global_reset_at = max(self.global_reset_at, self.clock() + retry_after)


shared_limiter = RateLimiter()

_MAJOR = re.compile(r"^/(channels|guilds|webhooks)/(\d+)(?:/([^/]+))?")
_ID = re.compile(r"/\d{5,}")


def route_and_major(method: str, path: str) -> tuple[str, str]:
    """The rate-limit route (`POST /channels/{major}/messages`) and its major parameter.

    Interaction tokens sit in webhook paths; they are part of the major parameter and never of a logged route.
    """
    match = _MAJOR.match(path)
    if not match:
        return f"{method} {_ID.sub('/{id}', path)}", ""
    kind, major_id, token = match.groups()
    major = f"{major_id}/{token}" if kind == "webhooks" and token else major_id
    rest = path[match.end() :] if kind == "webhooks" else path[len(f"/{kind}/{major_id}") :]
    return f"{method} /{kind}/{{major}}{_ID.sub('/{id}', rest)}", major
