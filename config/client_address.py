"""The client's address as the deployment reports it, for axes' per-address lockout.

Behind `TRUSTED_PROXY_COUNT` proxies that each append to X-Forwarded-For, the client is the entry the outermost
trusted proxy appended: the count-th from the right. Anything to its left was written by the client and is not
trusted. Without trusted proxies, or when the header is missing, short or not an address, REMOTE_ADDR is used.
"""

import ipaddress

from django.conf import settings


def client_address(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "")
    count = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if count <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < count:
        return remote
    candidate = hops[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
