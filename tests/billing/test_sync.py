"""The daily Stripe sync: it heals what webhooks missed, without doubling what they did."""

import io
import re
import time
from datetime import timedelta

import pytest
import stripe
from django.core.management import call_command
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule
from djstripe import models as djstripe_models

from billing import tasks
from billing.models import Subscription
from billing.sync import stripe_sync_run
from core.schedules import schedules_install
from customers.models import Customer, DomainEvent, TimelineEvent
from devtools.fakes.stripe.objects import stripe_event

pytestmark = pytest.mark.django_db


def run_sync():
    return stripe_sync_run(retry_delay=0)


def count(name: str) -> int:
    return DomainEvent.objects.filter(name=name).count()


def test_sync_creates_what_no_webhook_announced_and_the_late_webhook_doubles_nothing(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="missed@example.com")

    summary = run_sync()

    assert (summary.pages, summary.seen, summary.created, summary.errors) == (1, 1, 1, 0)
    subscription = Subscription.objects.get()
    assert subscription.customer.email == "missed@example.com"
    assert subscription.djstripe_subscription.id == world.subscription["id"]
    assert djstripe_models.Customer.objects.filter(id=world.customer["id"]).exists()
    assert count("subscription.created") == 1
    assert subscription.customer.lifecycle_stage == "onboarding"

    deliver(stripe_event("customer.subscription.created", world.subscription))
    assert count("subscription.created") == 1
    assert TimelineEvent.objects.filter(kind="subscription.created").count() == 1
    assert Subscription.objects.count() == 1


def test_sync_heals_a_missed_payment_failure_exactly_once(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="heal@example.com")
    deliver(stripe_event("customer.subscription.created", world.subscription))
    invoice = fake_stripe.add_invoice(
        subscription=world.subscription, status="open", attempt_count=1, next_payment_attempt=int(time.time()) + 86400
    )
    # Stripe moved on while our endpoint was down: the webhooks for this never arrived.
    fake_stripe.update(world.subscription["id"], status="past_due", latest_invoice=invoice["id"])

    summary = run_sync()

    assert (summary.updated, summary.status_changes) == (1, 1)
    subscription = Subscription.objects.get()
    assert subscription.status == "past_due"
    customer = subscription.customer
    assert customer.lifecycle_stage == "at_risk"
    assert count("payment.failed") == 1
    assert DomainEvent.objects.get(name="payment.failed").payload["invoice_id"] == invoice["id"]
    assert TimelineEvent.objects.filter(kind="subscription.status_changed").count() == 1

    # The webhooks arrive after all (Stripe retries for days): nothing is recorded twice.
    deliver(stripe_event("customer.subscription.updated", fake_stripe.get(world.subscription["id"])))
    deliver(stripe_event("invoice.payment_failed", invoice))
    assert count("payment.failed") == 1
    assert TimelineEvent.objects.filter(kind="payment.failed").count() == 1
    assert TimelineEvent.objects.filter(kind="subscription.status_changed").count() == 1

    # And a second sync finds nothing new.
    again = run_sync()
    assert (again.created, again.updated, again.unchanged, again.status_changes) == (0, 0, 1, 0)


def test_sync_after_the_webhook_changes_nothing(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="first@example.com")
    sub_id = world.subscription["id"]
    deliver(stripe_event("customer.subscription.created", world.subscription))
    fake_stripe.update(sub_id, status="canceled", ended_at=int(time.time()))
    deliver(stripe_event("customer.subscription.deleted", fake_stripe.get(sub_id)))
    events_before = DomainEvent.objects.count()
    timeline_before = TimelineEvent.objects.count()

    summary = run_sync()

    assert (summary.seen, summary.unchanged, summary.status_changes) == (1, 1, 0)
    assert DomainEvent.objects.count() == events_before
    assert TimelineEvent.objects.count() == timeline_before


def test_sync_heals_a_missed_cancellation(fake_stripe, deliver):
    world = fake_stripe.add_subscription(email="gone@example.com")
    deliver(stripe_event("customer.subscription.created", world.subscription))
    fake_stripe.update(
        world.subscription["id"],
        status="canceled",
        ended_at=int(time.time()),
        cancellation_details={"reason": "payment_failed", "feedback": None, "comment": None},
    )

    run_sync()

    subscription = Subscription.objects.get()
    assert (subscription.status, subscription.cancellation_reason) == ("canceled", "payment_failed")
    assert subscription.customer.lifecycle_stage == "churned"
    assert count("subscription.canceled") == 1
    deliver(stripe_event("customer.subscription.deleted", fake_stripe.get(world.subscription["id"])))
    assert count("subscription.canceled") == 1


def test_sync_counts_other_products_as_skipped(fake_stripe):
    fake_stripe.add_subscription(email="a@example.com")
    fake_stripe.add_subscription(email="b@example.com", product=fake_stripe.add_product(modready=False))

    summary = run_sync()

    assert (summary.seen, summary.created, summary.skipped_not_modready) == (2, 1, 1)
    assert not Customer.objects.filter(email="b@example.com").exists()


def test_sync_pages_through_everything_and_retries_a_failing_page(fake_stripe, monkeypatch):
    # stripe-python retries 5xx twice by itself; switched off here so the sync's own page retry is what is tested.
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    product = fake_stripe.add_product()
    price = fake_stripe.add_price(product=product)
    for n in range(150):
        fake_stripe.add_subscription(email=f"p{n}@example.com", product=product, price=price)
    fake_stripe.fail_next(503, times=2)

    summary = run_sync()

    assert (summary.pages, summary.seen, summary.created, summary.errors, summary.page_retries) == (2, 150, 150, 0, 2)
    assert Subscription.objects.count() == 150
    list_calls = fake_stripe.requests_to("GET", r"/v1/subscriptions")
    assert len(list_calls) == 4  # two failures, then two pages
    # Everything a subscription needs comes expanded in the list: no call per subscription.
    assert not fake_stripe.requests_to("GET", r"/v1/customers/.+")
    assert not fake_stripe.requests_to("GET", r"/v1/subscriptions/.+")


def test_one_bad_subscription_is_skipped_not_the_run(fake_stripe):
    fake_stripe.add_subscription(email="good@example.com")
    broken = fake_stripe.add_subscription(email="broken@example.com")
    broken.subscription["customer"] = None  # neither a customer nor an email: nothing to attach it to

    summary = run_sync()

    assert (summary.seen, summary.created, summary.errors) == (2, 1, 1)
    assert Subscription.objects.count() == 1


def test_a_stripe_customer_without_email_still_gets_its_subscription(fake_stripe):
    nameless = fake_stripe.add_customer(email="")
    world = fake_stripe.add_subscription(customer=nameless)

    summary = run_sync()

    assert (summary.created, summary.errors) == (1, 0)
    customer = Customer.objects.get(stripe_customer_id=nameless["id"])
    assert customer.email == ""
    assert Subscription.objects.get().stripe_subscription_id == world.subscription["id"]


def test_canceled_long_ago_is_imported_quietly(fake_stripe):
    long_ago = int(time.time()) - 400 * 86400
    fake_stripe.add_subscription(
        email="old@example.com", created=long_ago, status="canceled", ended_at=long_ago + 86400
    )
    fake_stripe.add_subscription(email="loyal@example.com", created=long_ago)

    run_sync()

    assert Subscription.objects.count() == 2
    # No welcome or win-back for history: the first sync of an existing account announces nothing old.
    assert not DomainEvent.objects.filter(name__startswith="subscription.").exists()
    assert Customer.objects.get(email="old@example.com").lifecycle_stage == "churned"
    assert Customer.objects.get(email="loyal@example.com").lifecycle_stage == "active"


def test_command_shows_progress_and_summary(fake_stripe):
    fake_stripe.add_subscription(email="cmd@example.com")
    out = io.StringIO()
    call_command("sync_stripe", "--retry-delay=0", stdout=out)
    text = out.getvalue()
    assert "page 1: 1 seen, 1 created" in text
    assert re.search(r"^skipped not modready +0$", text, re.MULTILINE)
    assert "Stripe sync finished with 0 error(s)." in text


def test_installing_the_schedules_plans_the_sync_for_the_next_eight_utc():
    Schedule.objects.all().delete()  # a fresh deployment (migrate may have installed them already)
    before = timezone.now()
    schedules_install()

    schedule = Schedule.objects.get(func="billing.tasks.stripe_sync_task")
    assert (schedule.next_run.hour, schedule.next_run.minute) == (8, 0)
    assert before < schedule.next_run <= before + timedelta(days=1)
    assert import_string(schedule.func) is tasks.stripe_sync_task
