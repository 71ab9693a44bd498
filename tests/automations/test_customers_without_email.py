"""A Stripe customer without an email address: nothing is queued for them, the timeline says why, and the sequence
starts once an address arrives, if what triggered it still holds."""

import time

import pytest
from django.core import mail

from automations.models import EmailQueueItem, Enrollment
from customers.models import Customer
from devtools.fakes.stripe.objects import stripe_event
from tests.billing.conftest import (  # noqa: F401 (fixtures)
    _fresh_endpoint_cache,
    deliver,
    fake_stripe,
    fake_stripe_server,
    webhook_endpoint,
)

pytestmark = pytest.mark.django_db


def _subscribe_without_email(fake_stripe, deliver):  # noqa: F811
    world = fake_stripe.add_subscription(customer=fake_stripe.add_customer(email=""))
    assert deliver(stripe_event("customer.subscription.created", world.subscription)).status_code == 200
    return world, Customer.objects.get(stripe_customer_id=world.customer["id"])


def test_no_email_is_skipped_with_a_note_and_enrolled_when_the_address_arrives(fake_stripe, deliver):  # noqa: F811
    world, customer = _subscribe_without_email(fake_stripe, deliver)

    assert customer.email == ""
    assert not Enrollment.objects.filter(customer=customer).exists()
    assert not EmailQueueItem.objects.exists()
    [note] = customer.timeline_events.filter(kind="automation.skipped_no_email")
    assert note.summary.startswith("Welcome not started: the customer has no email address")

    fake_stripe.update(world.customer["id"], email="late@example.com")
    deliver(stripe_event("customer.updated", fake_stripe.get(world.customer["id"])))

    customer.refresh_from_db()
    assert customer.email == "late@example.com"
    assert Enrollment.objects.get(customer=customer).rule.name == "Welcome"
    assert [m.to for m in mail.outbox] == [["late@example.com"]]
    # A second update (the name, say) starts nothing again.
    fake_stripe.update(world.customer["id"], name="Late Player")
    deliver(stripe_event("customer.updated", fake_stripe.get(world.customer["id"])))
    assert Enrollment.objects.filter(customer=customer).count() == 1
    assert len(mail.outbox) == 1


def test_an_address_arriving_after_the_trigger_ended_starts_nothing(fake_stripe, deliver):  # noqa: F811
    world, customer = _subscribe_without_email(fake_stripe, deliver)
    now = int(time.time())
    fake_stripe.update(world.subscription["id"], status="canceled", canceled_at=now, ended_at=now)
    deliver(stripe_event("customer.subscription.deleted", fake_stripe.get(world.subscription["id"])))

    fake_stripe.update(world.customer["id"], email="toolate@example.com")
    deliver(stripe_event("customer.updated", fake_stripe.get(world.customer["id"])))

    customer.refresh_from_db()
    assert customer.email == "toolate@example.com"
    # No welcome for a subscription that has ended; the win-back (skipped too) is still current and starts.
    assert list(Enrollment.objects.filter(customer=customer).values_list("rule__name", flat=True)) == ["Win-back"]
    assert mail.outbox == []  # win-back's first email is days away
