"""Broadcast fixtures: a topic, a marketing template, a segment of everyone, customers with consent, and a helper that
starts a broadcast the way the admin's "Send now" does (the enqueue task runs on commit, inline in tests)."""

import pytest

from customers.models import Customer, Topic
from marketing.broadcasts import broadcast_create, broadcast_send_now
from tests.automations.conftest import drain, fake_resend, resend  # noqa: F401  (the real drain and fake Resend)
from tests.automations.factories import EmailTemplateFactory

from .factories import SegmentFactory


@pytest.fixture(autouse=True)
def default_topics(request):
    """The topics of the data migration. A transactional test elsewhere (an API throttling test, a browser test)
    flushes the tables, data-migration rows included, and may have run first on this worker: put them back."""
    if "django_db_blocker" not in request.fixturenames and not request.node.get_closest_marker("django_db"):
        return
    request.getfixturevalue("_django_db_helper")
    from importlib import import_module

    from django.apps import apps

    import_module("customers.migrations.0013_topics_and_consent").create_default_topics(apps, None)


@pytest.fixture
def topic(db):
    return Topic.objects.get_or_create(slug="broadcast-news", defaults={"name": "Broadcast news"})[0]


@pytest.fixture
def template(db):
    return EmailTemplateFactory(
        name="Summer update", subject="News for {{ customer.first_name }}", html_body="<p>News!</p>", text_body="News!"
    )


@pytest.fixture
def everyone(db):
    return SegmentFactory(name="Everyone")


def customers_with_consent(count: int, *, prefix: str = "fan") -> list[Customer]:
    """Many customers at once (bulk), all with marketing consent."""
    start = Customer.objects.count()
    return Customer.objects.bulk_create(
        [
            Customer(email=f"{prefix}{start + n}@example.com", name=f"Fan {start + n}", opt_in_confirmed=True)
            for n in range(count)
        ]
    )


@pytest.fixture
def make_broadcast(topic, template, everyone):
    def make(**kwargs):
        kwargs.setdefault("name", f"Broadcast {Topic.objects.count()}-{kwargs.get('test_share_percent', 20)}")
        return broadcast_create(
            topic=kwargs.pop("topic", topic),
            segment=kwargs.pop("segment", everyone),
            template=kwargs.pop("template", template),
            **kwargs,
        )

    return make


@pytest.fixture
def no_drain_wakeups(monkeypatch):
    """Queued emails wait for the test's own drain() instead of a drain woken on commit (inline in tests)."""
    monkeypatch.setattr("automations.services.bulk_sends.queue_process_enqueue", lambda: None)
    monkeypatch.setattr("automations.drain_control.queue_process_enqueue", lambda: None)  # a rule's resume


@pytest.fixture
def start(run_on_commit, no_drain_wakeups):
    """Send a broadcast now, with the enqueue task run on commit (inline, as the task queue runs in tests)."""

    def send(broadcast, actor=None):
        with run_on_commit():
            broadcast_send_now(broadcast=broadcast, actor=actor)
        broadcast.refresh_from_db()
        return broadcast

    return send
