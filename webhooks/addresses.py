"""Server-side request forgery guard: an endpoint URL may not point into our own network.

A URL whose host resolves to a loopback, private, link-local (cloud metadata at 169.254.169.254), multicast, reserved
or unspecified address is refused, when the endpoint is saved and again before every send (DNS may change in
between). WEBHOOKS_ALLOW_PRIVATE_URLS turns the guard off for development and tests (receivers on 127.0.0.1).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeWebhookUrl(ValueError):
    pass


def url_check(url: str) -> None:
    """Raise UnsafeWebhookUrl unless `url` is http(s) and every address its host resolves to is public."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeWebhookUrl("Only http(s) URLs with a host can receive webhooks.")
    if parts.scheme == "http" and not settings.WEBHOOKS_ALLOW_HTTP:
        raise UnsafeWebhookUrl("Webhook URLs must use https.")
    if settings.WEBHOOKS_ALLOW_PRIVATE_URLS:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeWebhookUrl(f"The host {parts.hostname!r} does not resolve.") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            raise UnsafeWebhookUrl(f"{parts.hostname!r} resolves to a non-public address ({address}).")
