"""The webhook endpoint: signatures, bad input, duplicates, failures, retries and reprocessing."""

import io
import json
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from djstripe.models import Event, WebhookEndpoint, WebhookEventTrigger

from billing import tasks
from billing.models import StripeEventProcessing, Subscription
from billing.stripe_webhook import store as webhooks
from billing.stripe_webhook.endpoint import webhook_endpoint_cache_clear
from billing.stripe_webhook.view import StripeWebhookView
from core.client_address import UNKNOWN_ADDRESS
from customers.models import DomainEvent, TimelineEvent
from devtools.fakes.stripe.objects import signature_header, stripe_event
from tests.customers.factories import StaffUserFactory
from tests.webhook_cases import StoredWebhookCases
from tests.webhook_requests import event_fixture

from .conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db
URL = "/api/webhooks/stripe"


def post_raw(client, body: bytes, signature: str | None, **headers):
    extra = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return client.post(URL, data=body, content_type="application/json", **extra, **headers)


def nothing_stored() -> bool:
    return not WebhookEventTrigger.objects.exists() and not StripeEventProcessing.objects.exists()


def test_verified_delivery_is_stored_acknowledged_and_processed(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="ok@example.com")
    event = stripe_event("customer.subscription.created", world.subscription)

    response = deliver(event)

    assert response.status_code == 200
    trigger = WebhookEventTrigger.objects.get()
    assert trigger.valid and trigger.processed and trigger.event.id == event["id"]
    assert json.loads(trigger.body)["id"] == event["id"]
    processing = StripeEventProcessing.objects.get()
    assert (processing.status, processing.attempts, processing.event_type) == (
        "processed",
        1,
        "customer.subscription.created",
    )
    assert Subscription.objects.filter(stripe_subscription_id=world.subscription["id"]).exists()


def test_trailing_slash_is_the_same_endpoint(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="slash@example.com")
    response = deliver(stripe_event("customer.subscription.created", world.subscription), path=URL + "/")
    assert response.status_code == 200
    assert Subscription.objects.count() == 1


def test_ack_does_not_wait_for_processing(fake_stripe, client, webhook_endpoint, django_capture_on_commit_callbacks):
    """The response is sent before dj-stripe talks to Stripe: processing is only enqueued on commit."""
    world = fake_stripe.add_subscription(email="fast@example.com")
    body = json.dumps(stripe_event("customer.subscription.created", world.subscription)).encode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_raw(client, body, signature_header(body, WEBHOOK_SECRET))
    assert response.status_code == 200
    assert len(callbacks) == 1
    assert fake_stripe.requests == []
    assert StripeEventProcessing.objects.get().status == "pending"


def test_missing_signature_is_refused_and_nothing_stored(client, webhook_endpoint):
    body = json.dumps(event_fixture("stripe", "customer.created")).encode()
    assert post_raw(client, body, None).status_code == 400
    assert nothing_stored()


def test_invalid_signature_is_refused(client, webhook_endpoint):
    body = json.dumps(event_fixture("stripe", "customer.created")).encode()
    assert post_raw(client, body, signature_header(body, "whsec_wrong")).status_code == 400
    assert post_raw(client, body, "t=123,v1=nothex").status_code == 400
    assert post_raw(client, body, "garbage").status_code == 400
    # A valid signature of a different body (the body was tampered with).
    assert post_raw(client, body + b" ", signature_header(body, WEBHOOK_SECRET)).status_code == 400
    assert nothing_stored()


@pytest.mark.parametrize("signature", ["t=1,v1=\xe9\xe9\xe9", "t=\xe9,v1=abc", "t=1,v1=ab\u00ffcd"])
def test_a_signature_header_with_non_ascii_bytes_is_a_400(client, webhook_endpoint, signature):
    body = json.dumps(event_fixture("stripe", "customer.created")).encode()
    response = post_raw(client, body, signature)
    assert response.status_code == 400
    assert nothing_stored()


def test_signature_verify_says_no_to_non_ascii_instead_of_raising():
    from billing.stripe_webhook.endpoint import signature_verify

    header = "t=" + str(int(time.time())) + ",v1=\xe9" * 2
    assert signature_verify(payload=b"{}", header=header, secret=WEBHOOK_SECRET) is False


@pytest.mark.parametrize(
    ("proxies", "forwarded_for", "stored"),
    [
        (0, "unknown", "127.0.0.1"),  # no trusted proxy: the header is ignored, REMOTE_ADDR is the client
        (0, "203.0.113.9", "127.0.0.1"),  # ... even when it looks like an address (anyone can send it)
        (1, "unknown", UNKNOWN_ADDRESS),  # the proxy's entry is garbage: stored as unknown, never a failed delivery
        (1, "unknown, 198.51.100.7", "198.51.100.7"),  # the client wrote "unknown", our proxy appended the truth
        (2, "203.0.113.66, 198.51.100.7, 10.0.0.2", "198.51.100.7"),  # two proxies: the second entry from the right
        (2, "198.51.100.7", "127.0.0.1"),  # fewer entries than proxies: did not come through them, use the socket
    ],
)
def test_a_delivery_is_stored_whatever_x_forwarded_for_says(
    fake_stripe, deliver, settings, proxies, forwarded_for, stored
):
    settings.TRUSTED_PROXY_COUNT = proxies
    world = fake_stripe.add_subscription(email="xff@example.com")
    event = stripe_event("customer.subscription.created", world.subscription)
    response = deliver(event, headers={"HTTP_X_FORWARDED_FOR": forwarded_for})
    assert response.status_code == 200
    assert WebhookEventTrigger.objects.get().remote_ip == stored
    assert StripeEventProcessing.objects.get().status == "processed"


def test_stale_signature_is_refused(client, webhook_endpoint):
    body = json.dumps(event_fixture("stripe", "customer.created")).encode()
    stale = signature_header(body, WEBHOOK_SECRET, timestamp=int(time.time()) - 301)
    assert post_raw(client, body, stale).status_code == 400
    assert nothing_stored()


def test_rotated_secret_signatures_are_accepted(client, webhook_endpoint, django_capture_on_commit_callbacks):
    body = json.dumps(event_fixture("stripe", "product.created")).encode()
    # During a rotation Stripe signs with the old and the new secret; either may be ours.
    with django_capture_on_commit_callbacks(execute=False):
        response = post_raw(client, body, signature_header(body, "whsec_old_secret", WEBHOOK_SECRET))
    assert response.status_code == 200


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"id": 5, "type": "x", "data": {}}', b'"evt"'])
def test_malformed_json_is_refused(client, webhook_endpoint, body):
    assert post_raw(client, body, signature_header(body, WEBHOOK_SECRET)).status_code == 400
    assert nothing_stored()


def test_oversized_body_is_refused(client, webhook_endpoint, settings):
    settings.BILLING_WEBHOOK_MAX_BYTES = 1000
    event = stripe_event("customer.created", {"id": "cus_x", "object": "customer", "description": "x" * 2000})
    body = json.dumps(event).encode()
    assert post_raw(client, body, signature_header(body, WEBHOOK_SECRET)).status_code == 413
    assert nothing_stored()


def test_only_post(client, webhook_endpoint):
    assert client.get(URL).status_code == 405


def test_unconfigured_endpoint_answers_503_so_stripe_retries(client, db):
    body = json.dumps(event_fixture("stripe", "customer.created")).encode()
    assert post_raw(client, body, signature_header(body, WEBHOOK_SECRET)).status_code == 503
    assert nothing_stored()


def test_unknown_event_type_is_stored_and_ignored(fake_stripe, deliver):
    response = deliver(event_fixture("stripe", "radar.early_fraud_warning.created"))
    assert response.status_code == 200
    assert StripeEventProcessing.objects.get().status == "processed"
    assert Event.objects.filter(type="radar.early_fraud_warning.created").exists()
    assert not DomainEvent.objects.exists()


def test_duplicate_delivery_changes_nothing_the_second_time(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="twice@example.com")
    event = stripe_event("customer.subscription.created", world.subscription)

    assert deliver(event).status_code == 200
    calls_after_first = len(fake_stripe.requests)
    assert deliver(event).status_code == 200

    assert WebhookEventTrigger.objects.count() == 2  # every delivery is kept
    processing = StripeEventProcessing.objects.get()
    assert (processing.deliveries, processing.attempts) == (2, 1)
    assert len(fake_stripe.requests) == calls_after_first  # the duplicate was not processed again
    assert Subscription.objects.count() == 1
    assert TimelineEvent.objects.filter(kind="subscription.created").count() == 1
    assert DomainEvent.objects.filter(name="subscription.created").count() == 1


def test_processing_twice_by_two_workers_changes_nothing(fake_stripe, client, webhook_endpoint):
    world = fake_stripe.add_subscription(email="workers@example.com")
    event = stripe_event("customer.subscription.created", world.subscription)
    body = json.dumps(event).encode()
    post_raw(client, body, signature_header(body, WEBHOOK_SECRET))  # on_commit not run: nothing enqueued

    assert tasks.stripe_event_process_task(event["id"]) == "processed"
    assert tasks.stripe_event_process_task(event["id"]) is None
    # Even a forced second run (the admin's reprocess) records nothing twice: every fact is keyed.
    webhooks.stripe_event_reprocess(event_id=event["id"])
    assert tasks.stripe_event_process_task(event["id"]) == "processed"
    assert DomainEvent.objects.filter(name="subscription.created").count() == 1
    assert TimelineEvent.objects.filter(kind="subscription.created").count() == 1


def test_failed_processing_keeps_its_error_and_is_retried_with_backoff(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="flaky@example.com")
    event = stripe_event("customer.subscription.created", world.subscription)
    fake_stripe.fail_next(500, times=10)

    assert deliver(event).status_code == 200  # the ack does not depend on Stripe

    processing = StripeEventProcessing.objects.get()
    assert processing.status == "failed" and processing.attempts == 1
    assert "500" in processing.last_error or "Injected" in processing.last_error
    assert processing.next_attempt_at > timezone.now()
    trigger = WebhookEventTrigger.objects.get()
    assert trigger.exception and "Traceback" in trigger.traceback and not trigger.processed
    assert not Subscription.objects.exists() and not Event.objects.exists()

    # Not due yet: the retry schedule leaves it alone.
    assert tasks.stripe_events_retry_due() == 0
    fake_stripe.reset()
    StripeEventProcessing.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert tasks.stripe_events_retry_due() == 1

    processing.refresh_from_db()
    assert (processing.status, processing.attempts, processing.last_error) == ("processed", 2, "")
    assert Subscription.objects.count() == 1


def test_backoff_grows_and_gives_up(fake_stripe, deliver, settings):
    settings.BILLING_EVENT_MAX_ATTEMPTS = 3
    world = fake_stripe.add_subscription(email="down@example.com")
    event = stripe_event("customer.subscription.created", world.subscription)
    fake_stripe.fail_next(503, times=100)
    deliver(event)
    delays = []
    for _ in range(2):
        processing = StripeEventProcessing.objects.get()
        delays.append(processing.next_attempt_at - processing.updated_at)
        StripeEventProcessing.objects.update(next_attempt_at=timezone.now())
        tasks.stripe_events_retry_due()
    processing = StripeEventProcessing.objects.get()
    assert delays[1] > delays[0]
    assert (processing.status, processing.attempts, processing.next_attempt_at) == ("dead", 3, None)


def test_admin_reprocesses_a_failed_event(fake_stripe, deliver, client, django_capture_on_commit_callbacks):
    world = fake_stripe.add_subscription(email="admin@example.com")
    fake_stripe.fail_next(500, times=10)
    deliver(stripe_event("customer.subscription.created", world.subscription))
    fake_stripe.reset()
    processing = StripeEventProcessing.objects.get()
    assert processing.status == "failed"

    admin = StaffUserFactory(is_superuser=True)
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:billing_stripeeventprocessing_changelist"),
            {"action": "reprocess", "_selected_action": [processing.pk]},
        )
    assert response.status_code == 302
    processing.refresh_from_db()
    assert processing.status == "processed"
    assert Subscription.objects.count() == 1


# --- dj-stripe's DEBUG header override -------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
def test_forged_request_with_djstripe_secret_header_is_refused(client, webhook_endpoint, settings, debug):
    """dj-stripe lets X-Djstripe-Webhook-Secret replace the secret when DEBUG is on. Our endpoint never does, and
    production cannot run with DEBUG (next test)."""
    settings.DEBUG = debug
    forged_secret = "whsec_attacker"
    body = json.dumps(event_fixture("stripe", "customer.created")).encode()
    response = post_raw(
        client, body, signature_header(body, forged_secret), HTTP_X_DJSTRIPE_WEBHOOK_SECRET=forged_secret
    )
    assert response.status_code == 400
    assert nothing_stored()


def test_production_settings_force_debug_off():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DEBUG": "1",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "crm.modready.example",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
        "EMAIL_DELIVERY": "disabled",
    }
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_djstripe_stock_view_is_not_mounted(client):
    from django.urls import NoReverseMatch

    with pytest.raises(NoReverseMatch):
        reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": "00000000-0000-0000-0000-000000000000"})


# --- the endpoint row ------------------------------------------------------------------------------------------------


def test_webhook_endpoint_command_creates_then_updates_the_secret(db, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_first"
    call_command("stripe_webhook_endpoint", stdout=io.StringIO())
    settings.STRIPE_WEBHOOK_SECRET = "whsec_rotated"
    call_command("stripe_webhook_endpoint", stdout=io.StringIO())
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == "whsec_rotated"
    assert endpoint.url.endswith("/api/webhooks/stripe")


def test_the_one_orm_store_counts_duplicates_on_every_database(webhook_endpoint):
    # Was two stores (raw SQL on PostgreSQL, the ORM on SQLite); the ORM one now serves both.
    event = event_fixture("stripe", "customer.created")
    store = {"body": json.dumps(event), "event": event, "headers": {}, "remote_ip": "127.0.0.1"}
    assert webhooks.stripe_delivery_store(**store, endpoint=webhook_endpoint) == (True, "pending")
    assert webhooks.stripe_delivery_store(**store, endpoint=webhook_endpoint) == (False, "pending")
    assert webhooks.stripe_delivery_store(**store, endpoint=webhook_endpoint) == (False, "pending")
    assert StripeEventProcessing.objects.get().deliveries == 3
    assert WebhookEventTrigger.objects.count() == 3


# --- the cases every incoming webhook shares (tests/webhook_cases.py) -------------------------------------------------


class TestStripeWebhookCases(StoredWebhookCases):
    provider = "stripe"
    path = URL
    event = "radar.early_fraud_warning.created"  # no object dj-stripe would fetch: the cases need no Stripe world
    view_class = StripeWebhookView

    @pytest.fixture(autouse=True)
    def _configured(self, fake_stripe, webhook_endpoint):
        pass

    def delivered_count(self) -> int:
        return StripeEventProcessing.objects.count()

    def stored_row(self):
        return StripeEventProcessing.objects.get()

    def unconfigure(self, settings) -> None:
        WebhookEndpoint.objects.all().delete()
        webhook_endpoint_cache_clear()
