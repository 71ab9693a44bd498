import socket

import pytest
from pytest_socket import SocketConnectBlockedError

from devtools.fakes.server import FakeServer


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_a_test_cannot_reach_the_internet():
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("93.184.216.34", 80), timeout=1)


def test_loopback_is_allowed():
    with FakeServer() as server:
        host, port = server.url.removeprefix("http://").split(":")
        socket.create_connection((host, int(port)), timeout=1).close()
