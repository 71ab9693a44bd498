"""The client's IP address, read the way the deployment says (TRUSTED_PROXY_COUNT), never trusting what a client
can forge, and never raising: a request whose address cannot be told still gets an answer and is still stored.

With TRUSTED_PROXY_COUNT = 0 (no proxy, or one that does not set X-Forwarded-For) the address is REMOTE_ADDR. With N
trusted proxies, each appends the address it saw to X-Forwarded-For, so the client is the N-th entry from the right;
anything further left was written by the client and may be anything (`unknown`, a forged address, garbage).
"""

import ipaddress

from django.conf import settings
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
