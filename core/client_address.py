"""The client's IP address, read the way the deployment says (TRUSTED_PROXY_COUNT), never trusting what a client
can forge, and never raising: a request whose address cannot be told still gets an answer and is still stored.

With TRUSTED_PROXY_COUNT = 0 (no proxy, or one that does not set X-Forwarded-For) the address is REMOTE_ADDR. With N
trusted proxies, each appends the address it saw to X-Forwarded-For, so the client is the N-th entry from the right;
anything further left was written by the client and may be anything (`unknown`, a forged address, garbage).
"""

import ipaddress
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

# Stored where a column needs an address and none could be read (dj-stripe's WebhookEventTrigger.remote_ip is
# NOT NULL); it is what dj-stripe itself stores when REMOTE_ADDR is missing.
UNKNOWN_ADDRESS = "0.0.0.0"  # noqa: S104 (a placeholder value, not a bind address)


def _parse(value: str) -> str | None:
    """An IP address from a header entry ("1.2.3.4", "1.2.3.4:5678", "[2001:db8::1]:443", "2001:db8::1")."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, or None when the trusted source holds no valid address."""
    remote = _parse(request.META.get("REMOTE_ADDR") or "")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [entry for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()]
    if len(forwarded) < proxies:
        # Fewer entries than trusted proxies: the request did not come through all of them; trust only the socket.
        return remote
    return _parse(forwarded[-proxies])


def client_ip_or_unknown(request: HttpRequest) -> str:
    return client_ip(request) or UNKNOWN_ADDRESS


def client_address(request: HttpRequest) -> str:
    """For django-axes' per-address lockout (AXES_CLIENT_IP_CALLABLE), which needs a string: the client's address, or
    the peer's (REMOTE_ADDR) when the trusted source holds no valid address."""
    return client_ip(request) or request.META.get("REMOTE_ADDR", "")


# --- A proxy the settings do not know about ---------------------------------------------------------------------------
# With TRUSTED_PROXY_COUNT = 0 behind a proxy, every request seems to come from the proxy's own address. Lockouts no
# longer depend on the address alone (AXES_LOCKOUT_PARAMETERS), but the address still feeds the (username, address)
# lockout and the stored webhook sources, so the admin and /healthz say when requests carry X-Forwarded-For that is
# being ignored.

FORWARDED_HEADER_IGNORED = (
    "Requests arrive with an X-Forwarded-For header but TRUSTED_PROXY_COUNT is 0, so every visitor appears to come "
    "from the proxy's address. Set TRUSTED_PROXY_COUNT to the number of proxies in front of the app (README, "
    "Configuration)."
)
_SEEN_CACHE_KEY = "client-address:forwarded-header-ignored"
_SEEN_REMEMBERED_SECONDS = 24 * 3600
_last_recorded: float = 0.0


def forwarded_header_ignored(request: HttpRequest) -> bool:
    """This request carries X-Forwarded-For, which the settings say to ignore (no trusted proxy)."""
    return settings.TRUSTED_PROXY_COUNT <= 0 and bool(request.META.get("HTTP_X_FORWARDED_FOR", "").strip())


def forwarded_header_ignored_note(request: HttpRequest) -> bool:
    """Whether this request's X-Forwarded-For is ignored; if so, remembered for a day in the shared cache (at most one
    write a minute per process) so that /healthz reports it even when the monitor does not go through the proxy."""
    global _last_recorded
    if not forwarded_header_ignored(request):
        return False
    now = time.monotonic()
    if now - _last_recorded > 60:
        cache.set(_SEEN_CACHE_KEY, True, _SEEN_REMEMBERED_SECONDS)
        _last_recorded = now
    return True


def forwarded_header_ignored_recently() -> bool:
    return settings.TRUSTED_PROXY_COUNT <= 0 and bool(cache.get(_SEEN_CACHE_KEY))
