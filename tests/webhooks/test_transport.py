"""The send connects to the address that was checked: DNS rebinding, every answer checked, Host/SNI/certificates for
the endpoint's name, no proxies from the environment. Names resolve through a stub resolver (no real DNS)."""

import contextlib
import socket
import ssl
import time
from pathlib import Path

import pytest
import requests
from django.db import transaction
from pytest_socket import SocketConnectBlockedError

from customers.events import domain_event_publish
from devtools.fakes.slow_receiver import SlowReceiver
from devtools.fakes.webhook_receiver import FakeWebhookReceiver
from tests.customers.factories import CustomerFactory
from webhooks import services
from webhooks.addresses import UnsafeWebhookUrl, target_resolve
from webhooks.models import DeliveryStatus, OutboundDelivery
from webhooks.signing import secret_generate
from webhooks.transport import Deadline, pinned_session

pytestmark = pytest.mark.django_db

# A test CA, and a certificate for panel.example.
TLS = Path(__file__).resolve().parents[2] / "devtools" / "fakes" / "tls"
PUBLIC = "93.184.216.34"


class StubResolver:
    """Answers for made-up names, one list per lookup (the last one repeats); literal addresses resolve as usual."""

    def __init__(self, monkeypatch, answers: dict[str, list[list[str]]]):
        self.answers, self.lookups = answers, []
        self.real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        self.lookups.append(host)
        if host not in self.answers:
            return self.real(host, port, family, type, proto, flags)
        queue = self.answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port))) for address in addresses]


@pytest.fixture
def receiver():
    with FakeWebhookReceiver() as server:
        yield server


def port_of(server) -> int:
    return server._server.server_address[1]


def pending_delivery(url: str) -> OutboundDelivery:
    """A delivery waiting to be sent (its automatic first send left out, so the test sends it)."""
    endpoint = services.endpoint_create(url=url, event_types=["customer.purchase"])
    with transaction.atomic():
        event, _ = domain_event_publish(
            name="customer.stage_changed",
            key="test:1",
            customer=CustomerFactory(),
            payload={"from": "trial", "to": "purchase", "cause": "test"},
        )
    [delivery] = services.deliveries_create_for_event(event=event)
    assert delivery.endpoint == endpoint
    return delivery


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_a_name_rebound_to_loopback_after_the_check_is_not_reached(receiver, monkeypatch, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    # Public when the endpoint is saved and when the send checks it; loopback for anyone who asks after that.
    resolver = StubResolver(monkeypatch, {"panel.example": [[PUBLIC], [PUBLIC], ["127.0.0.1"]]})
    pending = pending_delivery(f"http://panel.example:{port_of(receiver)}/hooks")
    resolver.lookups.clear()

    # The connection goes to the checked public address, which the tests' network guard stops (no internet).
    with pytest.raises(SocketConnectBlockedError, match=PUBLIC.replace(".", r"\.")):
        services.delivery_send(delivery_id=pending.pk)

    assert receiver.requests == []
    assert resolver.lookups.count("panel.example") == 1  # checked once, never looked up again to connect


def test_every_answer_is_checked(monkeypatch, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    StubResolver(monkeypatch, {"panel.example": [[PUBLIC, "10.0.0.5"]]})
    with pytest.raises(UnsafeWebhookUrl, match=r"10\.0\.0\.5"):
        services.endpoint_create(url="https://panel.example/hooks", event_types=["customer.purchase"])


def test_the_receiver_sees_the_endpoints_name_in_the_host_header(receiver, monkeypatch, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True  # development: a name that resolves to this machine
    StubResolver(monkeypatch, {"panel.example": [["127.0.0.1"]]})
    url = f"http://panel.example:{port_of(receiver)}/hooks"
    pending = pending_delivery(url)
    receiver.secret = pending.endpoint.secret
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # ignored: a proxy would resolve the name again
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")

    services.delivery_send(delivery_id=pending.pk)

    [request] = receiver.requests
    assert request.header("Host") == f"panel.example:{port_of(receiver)}"
    assert OutboundDelivery.objects.get().status == DeliveryStatus.SUCCEEDED


@pytest.fixture
def tls_receiver():
    """The receiver over https with a certificate for panel.example, signed by the test CA."""
    server = FakeWebhookReceiver()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TLS / "receiver.pem", TLS / "receiver.key")
    server._server.socket = context.wrap_socket(server._server.socket, server_side=True)
    server.secret = secret_generate()
    with server:
        yield server


def post(url: str, *, verify, deadline: Deadline | None = None) -> requests.Response:
    with pinned_session(target=target_resolve(url), timeout=(2, 2), deadline=deadline) as session:
        session.verify = verify
        return session.post(url, data=b"{}", allow_redirects=False)


def test_tls_verifies_the_certificate_for_the_endpoints_name(tls_receiver, monkeypatch, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    StubResolver(monkeypatch, {"panel.example": [["127.0.0.1"]], "other.example": [["127.0.0.1"]]})
    port = port_of(tls_receiver)

    # Connected to the pinned address, the certificate is checked against the URL's name (SNI and hostname).
    assert post(f"https://panel.example:{port}/hooks", verify=str(TLS / "ca.pem")).status_code == 400  # unsigned
    # Same address, same trusted CA, but the certificate does not name this host: refused.
    with pytest.raises(requests.exceptions.SSLError, match=r"(?i)hostname|match"):
        post(f"https://other.example:{port}/hooks", verify=str(TLS / "ca.pem"))
    # And verification is on by default: the test CA is not a trusted one.
    with pytest.raises(requests.exceptions.SSLError):
        post(f"https://panel.example:{port}/hooks", verify=True)


def test_tls_under_a_send_deadline_still_verifies_the_certificate(tls_receiver, monkeypatch, settings):
    """The connections a deadline watches (webhooks.transport._WatchedHTTPSConnection) keep urllib3's TLS checks."""
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    StubResolver(monkeypatch, {"panel.example": [["127.0.0.1"]], "other.example": [["127.0.0.1"]]})
    port = port_of(tls_receiver)
    with Deadline(10) as deadline:
        assert (
            post(f"https://panel.example:{port}/hooks", verify=str(TLS / "ca.pem"), deadline=deadline).status_code
            == 400
        )
        with pytest.raises(requests.exceptions.SSLError, match=r"(?i)hostname|match"):
            post(f"https://other.example:{port}/hooks", verify=str(TLS / "ca.pem"), deadline=deadline)
    assert not deadline.expired


def test_a_tls_receiver_trickling_its_answer_is_cut_off_at_the_deadline(monkeypatch, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    StubResolver(monkeypatch, {"panel.example": [["127.0.0.1"]]})
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TLS / "receiver.pem", TLS / "receiver.key")
    with SlowReceiver("trickle_headers", interval=0.2, give_up_after=30, tls=context) as receiver:
        url = f"https://panel.example:{receiver.url.rsplit(':', 1)[1]}/hooks"
        started = time.monotonic()
        # The connection is cut: an error, or (http.client taking the cut for the end of the headers) a bare answer.
        with Deadline(1) as deadline, contextlib.suppress(requests.RequestException):
            post(url, verify=str(TLS / "ca.pem"), deadline=deadline)
        took = time.monotonic() - started
    assert deadline.expired and took < 3  # one deadline, not a timeout per trickled byte


def test_the_session_sends_nowhere_but_its_target(receiver, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    target = target_resolve(f"{receiver.url}/hooks")
    with pinned_session(target=target, timeout=(2, 2)) as session, pytest.raises(requests.exceptions.InvalidURL):
        session.post("http://127.0.0.2:9/elsewhere", data=b"{}")
    assert receiver.requests == []


@pytest.mark.parametrize("wrapped", ["64:ff9b::7f00:1", "2002:7f00:1::1", "::127.0.0.1", "64:ff9b::a9fe:a9fe"])
def test_a_name_that_later_answers_an_ipv6_wrapper_of_an_internal_address_is_not_sent_to(
    receiver, monkeypatch, settings, wrapped
):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    # Public when the endpoint is saved; the IPv6 form of an internal address when the send checks it.
    StubResolver(monkeypatch, {"panel.example": [[PUBLIC], [wrapped]]})
    pending = pending_delivery(f"https://panel.example:{port_of(receiver)}/hooks")

    services.delivery_send(delivery_id=pending.pk)

    pending.refresh_from_db()
    assert pending.status == DeliveryStatus.PENDING and "non-public address" in pending.last_error
    assert receiver.requests == []
