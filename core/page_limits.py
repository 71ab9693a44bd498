"""How often one client address may open a page reached by a signed link (the Discord-link confirmation, the
card-update link, ...): a count per address and page in the default cache. A shared cache (CACHES) makes the limit
hold across web processes; the in-process default holds it per process. The address is read per
TRUSTED_PROXY_COUNT (core/client_address.py)."""

from django.core.cache import cache
from django.http import HttpRequest

from .client_address import client_ip_or_unknown


def client_over_page_limit(request: HttpRequest, *, page: str, limit: int, window_seconds: int) -> bool:
    """Count this request against `page` for its client address; True once the address made more than `limit`
    requests within `window_seconds` (counted from its first request of the window)."""
    key = f"page-limit:{page}:{client_ip_or_unknown(request)}"
    if cache.add(key, 1, window_seconds):
        return False
    try:
        return cache.incr(key) > limit
    except ValueError:  # expired between add and incr
        cache.set(key, 1, window_seconds)
        return False
