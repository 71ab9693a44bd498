"""Why a payment failed, read from Stripe's payment intent on the failed invoice, kept per invoice and handed to the
dunning emails; the dunning holdout chosen by a stable hash of the invoice id."""

import time

import pytest

from billing import stripe_api
from billing.declines import UNKNOWN, decline_from_code, decline_from_payment_error
from billing.models import PaymentFailure
from billing.services.payment_failures import dunning_group_for, holdout_bucket
from customers.models import DomainEvent, TimelineEvent
from devtools.fakes.stripe.objects import stripe_event

pytestmark = pytest.mark.django_db

DAY = 86400


def _fail(fake_stripe, deliver, *, attempt=1, retry_in_days=3, world=None, invoice=None, failure=(), **reasons):
    world = world or fake_stripe.add_subscription(email=f"decline{time.time_ns()}@example.com")
    if invoice is None:
        deliver(stripe_event("customer.subscription.created", world.subscription))
        invoice = fake_stripe.add_invoice(subscription=world.subscription, status="open")
    retry = int(time.time()) + retry_in_days * DAY if retry_in_days else None
    fake_stripe.update(invoice["id"], attempt_count=attempt, attempted=True, next_payment_attempt=retry)
    if failure is not None:
        # Stripe's retries are days apart: each attempt's payment is newer than the one before, never the same second.
        created = int(time.time()) - (10 - attempt) * DAY
        fake_stripe.add_failed_payment(invoice=fake_stripe.get(invoice["id"]), created=created, **reasons)
    fake_stripe.update(world.subscription["id"], status="past_due")
    deliver(stripe_event("invoice.payment_failed", fake_stripe.get(invoice["id"])))
    return world, invoice


@pytest.mark.parametrize(
    ("failure", "kind", "code"),
    [
        ({"decline_code": "insufficient_funds"}, "soft", "insufficient_funds"),
        ({"code": "expired_card"}, "hard", "expired_card"),
        ({"decline_code": "lost_card"}, "hard", "lost_card"),
        ({"code": "incorrect_number"}, "hard", "incorrect_number"),
        ({"decline_code": "authentication_required"}, "authentication_required", "authentication_required"),
        ({"requires_action": True}, "authentication_required", ""),
    ],
)
def test_the_decline_is_read_from_the_failed_payment_and_kept(fake_stripe, deliver, failure, kind, code):
    _world, invoice = _fail(fake_stripe, deliver, **failure)

    row = PaymentFailure.objects.get(invoice_id=invoice["id"])
    assert (row.decline_kind, row.decline_code, row.attempt_count) == (kind, code, 1)
    assert row.next_payment_attempt is not None
    event = DomainEvent.objects.get(name="payment.failed")
    assert event.payload["decline"]["kind"] == kind
    assert event.payload["decline"]["code"] == code
    assert event.payload["dunning_holdout"] is False
    # The lookup asked Stripe for the invoice with its payments' intents expanded (API 2025-03-31.basil).
    lookups = [
        request
        for request in fake_stripe.requests_to("GET", rf"/v1/invoices/{invoice['id']}")
        if any("payments.data.payment.payment_intent" in values for values in request.query.values())
    ]
    assert len(lookups) == 1


def test_a_later_attempt_updates_the_decline_and_the_timeline_names_it(fake_stripe, deliver):
    world, invoice = _fail(fake_stripe, deliver, decline_code="insufficient_funds")
    _fail(fake_stripe, deliver, world=world, invoice=invoice, attempt=2, retry_in_days=None, code="expired_card")

    row = PaymentFailure.objects.get(invoice_id=invoice["id"])
    assert (row.decline_kind, row.decline_code, row.attempt_count, row.next_payment_attempt) == (
        "hard",
        "expired_card",
        2,
        None,
    )
    summaries = list(
        TimelineEvent.objects.filter(kind="payment.failed").order_by("id").values_list("summary", flat=True)
    )
    assert "(insufficient_funds)" in summaries[0] and "(expired_card)" in summaries[1]


def test_when_stripe_does_not_say_why_the_failure_is_still_recorded_without_a_reason(fake_stripe, deliver):
    _world, invoice = _fail(fake_stripe, deliver, failure=None)

    row = PaymentFailure.objects.get(invoice_id=invoice["id"])
    assert (row.decline_kind, row.decline_code) == ("", "")
    assert DomainEvent.objects.get(name="payment.failed").payload["decline"] == {"kind": "", "code": "", "reason": ""}


def test_a_lookup_stripe_does_not_answer_gives_no_reason_instead_of_holding_up_the_dunning(fake_stripe):
    fake_stripe.fail_next(503, times=5)
    assert stripe_api.invoice_decline_fetch("in_anything") == UNKNOWN
    assert stripe_api.invoice_decline_fetch("in_missing") == UNKNOWN  # 404


def test_the_holdout_is_a_stable_share_chosen_by_the_invoice_id(settings):
    ids = [f"in_{n:08d}" for n in range(20_000)]
    assert dunning_group_for("in_x", percent=0) == ""
    held = sum(dunning_group_for(invoice_id, percent=10) == "holdout" for invoice_id in ids)
    assert 1800 < held < 2200  # about 10%
    assert [holdout_bucket(i) for i in ids[:50]] == [holdout_bucket(i) for i in ids[:50]]
    assert all(dunning_group_for(i, percent=100) == "holdout" for i in ids[:50])
    assert {dunning_group_for(i, percent=10) for i in ids[:200]} == {"holdout", "emails"}


def test_a_held_out_invoice_keeps_its_group_on_every_attempt_whatever_the_setting_becomes(
    fake_stripe, deliver, settings
):
    settings.DUNNING_HOLDOUT_PERCENT = 100
    world, invoice = _fail(fake_stripe, deliver, decline_code="insufficient_funds")
    settings.DUNNING_HOLDOUT_PERCENT = 0
    _fail(fake_stripe, deliver, world=world, invoice=invoice, attempt=2, decline_code="insufficient_funds")

    assert PaymentFailure.objects.get(invoice_id=invoice["id"]).dunning_group == "holdout"
    assert [e.payload["dunning_holdout"] for e in DomainEvent.objects.filter(name="payment.failed")] == [True, True]


def test_the_words_the_customer_reads():
    assert decline_from_code("insufficient_funds").reason == "the card did not have enough funds"
    assert decline_from_code("something_new").kind == "soft"
    assert decline_from_payment_error(None).kind == ""
    assert decline_from_payment_error({"code": "card_declined"}, payment_intent_status="requires_action").kind == (
        "authentication_required"
    )
