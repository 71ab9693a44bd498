"""The client address: REMOTE_ADDR unless the deployment names its trusted proxies, never an exception."""

import pytest
from django.test import RequestFactory

from core.client_address import UNKNOWN_ADDRESS, client_ip, client_ip_or_unknown


def request(remote="192.0.2.10", forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        (0, "192.0.2.10", "198.51.100.7", "192.0.2.10"),
        (0, "not-an-ip", None, None),
        (1, "10.0.0.1", "198.51.100.7", "198.51.100.7"),
        (1, "10.0.0.1", "198.51.100.7:4711", "198.51.100.7"),
        (1, "10.0.0.1", "[2001:db8::7]:443", "2001:db8::7"),
        (1, "10.0.0.1", "2001:db8::7", "2001:db8::7"),
        (1, "10.0.0.1", " , unknown", None),
        (1, "10.0.0.1", "", "10.0.0.1"),
        (1, "10.0.0.1", "_hidden", None),
    ],
)
def test_client_ip(settings, proxies, remote, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    assert client_ip(request(remote, forwarded)) == expected


def test_an_unknown_address_has_a_storable_placeholder(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip_or_unknown(request("10.0.0.1", "unknown")) == UNKNOWN_ADDRESS
