"""The fake-server harness lives in devtools/standins/server.py: the local run's Stripe stand-in uses it too."""

from devtools.standins.server import FakeRequest, FakeResponse, FakeServer, route

__all__ = ["FakeRequest", "FakeResponse", "FakeServer", "route"]
