import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from automations.drain import email_queue_process
from automations.models import EmailQueueItem, QueueStatus
from customers.events import domain_event_dispatch, domain_event_publish
from devtools.fakes.resend import SIGNING_SECRET, FakeResend

_keys = itertools.count(1)


@pytest.fixture(autouse=True)
def default_flows(request):
    """The default templates and rules from the data migration.

    A transactional test elsewhere flushes the tables, data-migration rows included; put them back (get_or_create)."""
    if "django_db_blocker" not in request.fixturenames and not request.node.get_closest_marker("django_db"):
        return
    request.getfixturevalue("_django_db_helper")
    from importlib import import_module

    from django.apps import apps

    import_module("customers.migrations.0013_topics_and_consent").create_default_topics(apps, None)
    import_module("automations.migrations.0002_default_flows").create_defaults(apps, None)
    import_module("automations.migrations.0007_dunning_timed_to_stripe").time_dunning_to_stripe(apps, None)
    import_module("automations.migrations.0012_win_back_campaigns").mark_win_back_rules(apps, None)
    import_module("automations.migrations.0013_installation_id").make_installation_id(apps, None)
    import_module("automations.migrations.0015_topics_caps_quiet_hours").classify_existing_rules(apps, None)
    import_module("automations.migrations.0017_card_update_link_in_dunning").link_card_update(apps, None)


@pytest.fixture
def fake_resend():
    with FakeResend() as server:
        yield server


@pytest.fixture
def resend(settings, fake_resend):
    """Send through Resend's API (the fake): anymail for single emails, the batch endpoint for several."""
    settings.AUTOMATIONS_EMAIL_TRANSPORT = "resend"
    settings.RESEND_API_KEY = "re_test_key"
    settings.ANYMAIL = {
        "RESEND_API_KEY": "re_test_key",
        "RESEND_SIGNING_SECRET": SIGNING_SECRET,
        "RESEND_API_URL": fake_resend.url + "/",
    }
    settings.AUTOMATIONS_SEND_TIMEOUT = 1.0
    settings.AUTOMATIONS_RESEND_REQUESTS_PER_SECOND = 0  # no pacing unless a test turns it on
    settings.AUTOMATIONS_RETRY_BASE_SECONDS = 30
    return fake_resend


@pytest.fixture
def publish(run_on_commit):
    """Publish a domain event and dispatch it the way the task queue would after commit."""

    def publish_event(name, customer, payload=None, key=None):
        with run_on_commit():
            event, _ = domain_event_publish(
                name=name, key=key or f"test:{name}:{next(_keys)}", customer=customer, payload=payload or {}
            )
        # Dispatch is at least once: a second dispatch finds the event done (and handlers are idempotent anyway).
        domain_event_dispatch(event_id=event.pk)
        return event

    return publish_event


@pytest.fixture
def drain():
    """Run the queue as the schedule would, never actually sleeping; returns the DrainResult."""

    def run(**kwargs):
        kwargs.setdefault("sleep", lambda seconds: None)
        kwargs.setdefault("time_budget", 30)
        return email_queue_process(**kwargs)

    return run


def make_due(queryset=None):
    """Time passes: every pending email (and every retry wait) is due now."""
    from automations.models import BatchStatus, EmailBatch

    past = timezone.now() - timedelta(seconds=1)
    (queryset if queryset is not None else EmailQueueItem.objects.all()).filter(status=QueueStatus.PENDING).update(
        next_attempt_at=past
    )
    EmailBatch.objects.filter(status=BatchStatus.SENDING).update(lease_expires_at=past)


def subscription_payload(subscription_id="sub_1", product_id="prod_modded", **extra):
    return {
        "subscription_id": subscription_id,
        "product_id": product_id,
        "product_name": "Modded Server 8 GB",
        "price_id": "price_1",
        "status": "active",
        "amount": 1999,
        "currency": "usd",
        "interval": "month",
        "trial_end": None,
        **extra,
    }


_RETRY_IN_THREE_DAYS = object()


def payment_failed_payload(subscription_id="sub_1", next_payment_attempt=_RETRY_IN_THREE_DAYS, **extra):
    """A payment.failed payload. Stripe announces its next retry unless next_payment_attempt=None (retries over)."""
    if next_payment_attempt is _RETRY_IN_THREE_DAYS:
        next_payment_attempt = (timezone.now() + timedelta(days=3)).replace(microsecond=0).isoformat()
    return {
        "invoice_id": "in_1",
        "subscription_id": subscription_id,
        "product_id": "prod_modded",
        "attempt_count": 1,
        "next_payment_attempt": next_payment_attempt,
        "amount_due": 1999,
        "currency": "usd",
        "hosted_invoice_url": "https://invoice.stripe.com/i/in_1",
        **extra,
    }
