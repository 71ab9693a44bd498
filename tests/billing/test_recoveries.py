"""The dashboard's payment recoveries: recorded with the payment.recovered fact, and the same when rebuilt from the
timeline."""

import io
import time

import pytest
from django.core.management import call_command

from billing.models import PaymentRecovery
from customers.models import TimelineEvent
from devtools.fakes.stripe.objects import stripe_event

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


def test_a_dunning_email_sent_after_the_payment_on_the_same_day_credits_nothing_kept_or_rebuilt():
    """The dashboard credits dunning only when its email went out before the payment, to the second: a payment at
    10:00 and a reminder at 11:00 the same day is no recovery by dunning, recorded as it happens or rebuilt later."""
    from datetime import UTC, datetime, timedelta

    from automations.models import QueueStatus
    from billing.recoveries import payment_recoveries_rebuild
    from tests.automations.factories import AutomationRuleFactory, AutomationStepFactory, QueuedEmailFactory
    from tests.backoffice.story import _failed, _recovered

    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    dunning = AutomationStepFactory(rule=AutomationRuleFactory(trigger="payment.failed", name="Dunning same day"))
    email = QueuedEmailFactory(step=dunning, enrollment__rule=dunning.rule, enrollment__subscription_id="sub_same")
    customer = email.customer
    _failed(customer, "in_same", "sub_same", days_ago=4 / 24, now=now, amount=999, currency="eur")  # 08:00
    _recovered(customer, "in_same", days_ago=2 / 24, now=now)  # paid 10:00
    email.status, email.sent_at = QueueStatus.SENT, now - timedelta(hours=1)  # the reminder left at 11:00
    email.save()

    assert PaymentRecovery.objects.get(invoice_id="in_same").after_dunning is False
    payment_recoveries_rebuild()
    assert PaymentRecovery.objects.get(invoice_id="in_same").after_dunning is False
