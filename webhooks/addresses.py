"""Server-side request forgery guard: an endpoint URL may not point into our own network.

A URL whose host resolves to a loopback, private, link-local (cloud metadata at 169.254.169.254), multicast, reserved
or unspecified address is refused, when the endpoint is saved and again before every send (DNS may change in
between). Every address the name resolves to is checked, and the send then connects to the checked address itself
(`webhooks.transport`), never resolving the name a second time: a DNS answer that changes between the check and the
connection (rebinding) cannot steer the request inside.

IPv6 forms that carry an IPv4 address inside are judged by that IPv4 address too, since a translator or tunnel on the
way (NAT64, 6to4, Teredo) or the operating system itself (IPv4-mapped and IPv4-compatible addresses) delivers them to
it: `64:ff9b::10.0.0.1` reaches 10.0.0.1 through a NAT64 gateway although Python calls the IPv6 address global. The
local-use NAT64 prefix `64:ff9b:1::/48` (RFC 8215) and the deprecated IPv4-compatible form `::a.b.c.d` are refused
whatever they carry. WEBHOOKS_ALLOW_PRIVATE_URLS turns the check off for
development and tests (receivers on 127.0.0.1); the send still connects to the address it resolved.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeWebhookUrl(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    """Where a send goes: the URL's host and port, and the one checked address to connect to."""

    hostname: str
    port: int
    address: str


# Prefixes whose addresses carry an IPv4 address in their last 32 bits (RFC 6052 well-known NAT64, RFC 6145 SIIT).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIIT = ipaddress.ip_network("::ffff:0:0:0/96")
# Never a public receiver: local-use NAT64 (RFC 8215) and IPv4-compatible addresses (RFC 4291, deprecated).
_ALWAYS_REFUSED = (ipaddress.ip_network("64:ff9b:1::/48"), ipaddress.ip_network("::/96"))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address delivers to (mapped, NAT64, SIIT, 6to4, both ends of Teredo)."""
    embedded = []
    if address.ipv4_mapped is not None:
        embedded.append(address.ipv4_mapped)
    if address in _NAT64 or address in _SIIT:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        embedded.append(address.sixtofour)
    if address.teredo is not None:
        embedded.extend(address.teredo)
    return embedded


def address_is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for an address on the public internet, judged also by any IPv4 address an IPv6 form carries."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in network for network in _ALWAYS_REFUSED):
            return False
        return all(address_is_public(inner) for inner in _embedded_ipv4(address))
    return True


def _split(url: str):
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeWebhookUrl("Only http(s) URLs with a host can receive webhooks.")
    if parts.scheme == "http" and not settings.WEBHOOKS_ALLOW_HTTP:
        raise UnsafeWebhookUrl("Webhook URLs must use https.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeWebhookUrl("The URL's port is not a number from 0 to 65535.") from exc
    return parts.hostname, port


def target_resolve(url: str) -> Target:
    """Resolve `url`'s host once and check every address it answered; the first one is where the send connects.

    Raises UnsafeWebhookUrl for a URL that is not http(s), a host that does not resolve, or (unless
    WEBHOOKS_ALLOW_PRIVATE_URLS) any non-public address among the answers."""
    hostname, port = _split(url)
    try:
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeWebhookUrl(f"The host {hostname!r} does not resolve.") from exc
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise UnsafeWebhookUrl(f"The host {hostname!r} does not resolve.")
    if not settings.WEBHOOKS_ALLOW_PRIVATE_URLS:
        for address in addresses:
            if not address_is_public(address):
                raise UnsafeWebhookUrl(f"{hostname!r} resolves to a non-public address ({address}).")
    return Target(hostname=hostname, port=port, address=str(addresses[0]))


def url_check(url: str) -> None:
    """Raise UnsafeWebhookUrl unless `url` is http(s) and every address its host resolves to is public (saving an
    endpoint; with WEBHOOKS_ALLOW_PRIVATE_URLS the name need not resolve yet)."""
    if settings.WEBHOOKS_ALLOW_PRIVATE_URLS:
        _split(url)
        return
    target_resolve(url)
