"""The HTTP session a webhook send uses: it connects to the address `addresses.target_resolve` checked, and nowhere
else.

`requests` would otherwise resolve the endpoint's name again when it connects, and a DNS answer that changed since the
check (DNS rebinding) would reach an internal address. The adapter below keeps the URL, so the `Host` header, TLS
server name indication and certificate verification are all for the endpoint's hostname, but hands urllib3 the
checked IP address as the host to connect to. With https the certificate must still be valid for the hostname
(`server_hostname` drives both SNI and the standard library's hostname check; tests/webhooks/test_transport.py shows a
certificate for another name is refused). The session ignores proxy environment variables (`trust_env = False`: a
proxy would resolve the name itself), and the caller never follows redirects.
"""

from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from integrations.http import session_build

from .addresses import Target


class PinnedAddressAdapter(HTTPAdapter):
    """Sends requests for `target.hostname:target.port` to `target.address`; refuses any other host."""

    def __init__(self, target: Target):
        self.target = target
        super().__init__(max_retries=0)

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


def pinned_session(*, target: Target, timeout: tuple[float, float]) -> requests.Session:
    session = session_build(timeout=timeout)
    session.trust_env = False
    session.max_redirects = 0
    adapter = PinnedAddressAdapter(target)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
