"""`manage.py demo_journey` without a running server: the journey goes through the real webhook view in process,
against the Stripe stand-in, and leaves what a newcomer should see: the stages, the timeline, the emails."""

import io
import socket

import pytest
import stripe
from django.core.management import call_command

from billing.stripe_webhook.endpoint import webhook_endpoint_cache_clear
from customers.models import Customer
from devtools.models import OutboxEmail


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def local_like(settings, tmp_path, monkeypatch, transactional_db, request):
    port = free_port()
    settings.STRIPE_STANDIN = True
    settings.STRIPE_STANDIN_PORT = port
    settings.STRIPE_API_HOST = f"http://127.0.0.1:{port}"
    monkeypatch.setattr(stripe, "api_base", settings.STRIPE_API_HOST)
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_" + "0" * 24 + "localstandin"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_journey_" + "c" * 24
    settings.VAR_DIR = tmp_path
    settings.SITE_URL = f"http://127.0.0.1:{free_port()}"  # nobody listens: the command uses the view in process
    settings.EMAIL_BACKEND = "devtools.outbox.EmailBackend"
    settings.AUTOMATIONS_EMAIL_TRANSPORT = "django"
    settings.MODREADY_STRIPE_PRODUCT_IDS = []
    webhook_endpoint_cache_clear()
    request.getfixturevalue("default_flows")  # a transactional test starts from flushed tables
    yield
    webhook_endpoint_cache_clear()


def test_the_journey_plays_through_the_webhook_view_and_fills_the_outbox(local_like):
    output = io.StringIO()
    call_command("demo_journey", "--pace", "0", "--email", "jordan@example.com", stdout=output)

    customer = Customer.objects.get(email="jordan@example.com")
    assert customer.lifecycle_stage == "churned"
    path = list(customer.stage_transitions.order_by("occurred_at", "id").values_list("to_stage", flat=True))
    assert "at_risk" in path and path[-1] == "churned"
    assert customer.subscriptions.get().status == "canceled"
    subjects = [e.subject for e in OutboxEmail.objects.all() if "jordan@example.com" in e.to]
    assert any(subject.startswith("Welcome to ModReady") for subject in subjects)
    assert any("payment" in subject.lower() for subject in subjects)
    text = output.getvalue()
    assert "using the webhook view in this process" in text
    assert f"/admin/customers/customer/{customer.pk}/change/" in text
    assert "Step 4/4: Cancelled" in text
