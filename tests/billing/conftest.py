import pytest
import stripe

from billing.stripe_webhook.endpoint import webhook_endpoint_cache_clear, webhook_endpoint_configure
from devtools.fakes.stripe.objects import signed_request
from devtools.fakes.stripe.server import FakeStripe

WEBHOOK_SECRET = "whsec_test_" + "a" * 32


@pytest.fixture(autouse=True)
def _fresh_endpoint_cache():
    webhook_endpoint_cache_clear()


@pytest.fixture(scope="session")
def fake_stripe_server():
    with FakeStripe() as server:
        yield server


@pytest.fixture
def fake_stripe(fake_stripe_server, monkeypatch, settings):
    """The fake Stripe API, emptied and switched to normal for each test; stripe-python points at it."""
    fake_stripe_server.reset()
    for objects in fake_stripe_server.objects.values():
        objects.clear()
    fake_stripe_server.line_items.clear()
    monkeypatch.setattr(stripe, "api_base", fake_stripe_server.url)
    settings.MODREADY_STRIPE_PRODUCT_IDS = []
    return fake_stripe_server


@pytest.fixture
def webhook_endpoint(db):
    endpoint, _ = webhook_endpoint_configure(
        secret=WEBHOOK_SECRET, url="https://crm.modready.example/api/webhooks/stripe"
    )
    return endpoint


@pytest.fixture
def deliver(client, webhook_endpoint, django_capture_on_commit_callbacks):
    """POST a signed event to the endpoint as Stripe would, running the processing task (on commit, inline)."""

    def post(event: dict, *, secret: str = WEBHOOK_SECRET, headers: dict | None = None, path="/api/webhooks/stripe"):
        body, signature = signed_request(event, secret=secret)
        extra = {"HTTP_STRIPE_SIGNATURE": signature, **(headers or {})}
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(path, data=body, content_type="application/json", **extra)
        return response

    return post
