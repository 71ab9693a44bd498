"""The dashboard's payment recoveries: recorded with the payment.recovered fact, and the same when rebuilt from the
timeline."""

import io
import time

import pytest
from django.core.management import call_command

from billing.models import PaymentRecovery
from customers.models import TimelineEvent
from tests.fakes.stripe import stripe_event

pytestmark = pytest.mark.django_db


def _rows() -> list[tuple]:
    return sorted(
        PaymentRecovery.objects.values_list(
            "customer_id", "invoice_id", "subscription_id", "first_failed_at", "recovered_at", "amount", "currency"
        )
    )


def test_a_failed_invoice_paid_later_is_a_recovery_with_the_amount_stripe_last_asked_for(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="card@example.com")
    deliver(stripe_event("customer.subscription.created", world.subscription))
    invoice = fake_stripe.add_invoice(
        subscription=world.subscription,
        status="open",
        attempt_count=1,
        attempted=True,
        next_payment_attempt=int(time.time()) + 3 * 86400,
    )
    fake_stripe.update(world.subscription["id"], status="past_due")
    deliver(stripe_event("invoice.payment_failed", invoice))
    assert not PaymentRecovery.objects.exists()

    fake_stripe.update(invoice["id"], status="paid", attempt_count=2, amount_paid=1499, next_payment_attempt=None)
    fake_stripe.update(world.subscription["id"], status="active")
    paid = stripe_event("invoice.paid", fake_stripe.get(invoice["id"]))
    deliver(paid)
    deliver(paid)  # a replay adds nothing

    recovery = PaymentRecovery.objects.get()
    failed = TimelineEvent.objects.get(kind="payment.failed")
    recovered = TimelineEvent.objects.get(kind="payment.recovered")
    assert (recovery.invoice_id, recovery.subscription_id) == (invoice["id"], world.subscription["id"])
    assert (recovery.first_failed_at, recovery.recovered_at) == (failed.occurred_at, recovered.occurred_at)
    assert recovery.amount_display == "14.99 EUR"

    kept = _rows()
    PaymentRecovery.objects.all().delete()
    call_command("rebuild_payment_recoveries", stdout=io.StringIO())
    assert _rows() == kept
