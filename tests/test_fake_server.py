import time

import pytest
import requests

from devtools.fakes.server import FakeServer, route
from integrations.http import ProviderError, retry_after_seconds, session_build


class EchoProvider(FakeServer):
    name = "echo"

    @route("POST", r"/things")
    def create(self, request):
        return 201, {"id": "thing_1", "got": request.json()}

    @route("GET", r"/things/(?P<thing_id>\w+)")
    def retrieve(self, request):
        return {"id": request.params["thing_id"]}


@pytest.fixture
def fake():
    with EchoProvider() as server:
        yield server


def test_routes_and_records_requests(fake):
    session = session_build()
    created = session.post(f"{fake.url}/things", json={"a": 1})
    fetched = session.get(f"{fake.url}/things/abc")

    assert created.status_code == 201 and created.json()["got"] == {"a": 1}
    assert fetched.json() == {"id": "abc"}
    assert [r.path for r in fake.requests] == ["/things", "/things/abc"]
    assert fake.requests[0].header("user-agent").startswith("ModReady-CRM")
    assert session.get(f"{fake.url}/nothing").status_code == 404


def test_injected_failures_then_recovery(fake):
    fake.fail_next(503, times=2)
    fake.fail_next(429, retry_after=7)
    statuses = [requests.get(f"{fake.url}/things/x", timeout=2) for _ in range(4)]

    assert [r.status_code for r in statuses] == [503, 503, 429, 200]
    assert retry_after_seconds(statuses[2]) == 7
    error = ProviderError.from_response(statuses[2])
    assert error.is_retryable and error.retry_after == 7
    assert not ProviderError(status=400).is_retryable


def test_rate_limit_answers_429_beyond_the_allowance(fake):
    fake.rate_limit(per_second=3, retry_after=1)
    statuses = [requests.get(f"{fake.url}/things/x", timeout=2).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert fake.rate_limited_count == 2


def test_latency_and_client_timeouts(fake):
    fake.latency = 0.3
    session = session_build(timeout=(1, 0.1))
    with pytest.raises(requests.Timeout):
        session.get(f"{fake.url}/things/slow")
    started = time.monotonic()
    session_build(timeout=(1, 2)).get(f"{fake.url}/things/slow")
    assert time.monotonic() - started >= 0.3


def test_dropped_connection_is_a_transport_error(fake):
    fake.drop_next()
    with pytest.raises(requests.ConnectionError) as excinfo:
        requests.get(f"{fake.url}/things/x", timeout=2)
    assert ProviderError.from_transport(excinfo.value).status == 0


def test_a_lost_answer_acts_then_drops_or_answers_a_gateway_error(fake):
    fake.lose_answer_next("POST", r"/things")
    fake.lose_answer_next("POST", r"/things", status=504)
    session = session_build()

    with pytest.raises(requests.ConnectionError):
        session.post(f"{fake.url}/things", json={"n": 1})
    assert session.get(f"{fake.url}/things/abc").status_code == 200  # other routes are not affected
    assert session.post(f"{fake.url}/things", json={"n": 2}).status_code == 504
    assert session.post(f"{fake.url}/things", json={"n": 3}).status_code == 201
    assert [r.json()["n"] for r in fake.requests_to("POST", r"/things")] == [1, 2, 3]  # all three were sent
