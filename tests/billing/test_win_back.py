"""Churned -> Win-back -> Churned or back to a subscription (customers/lifecycle.py), played through Stripe's
webhooks, the default Win-back rule and the email queue."""

import time
from importlib import import_module

import pytest
from django.apps import apps

from automations.drain import email_queue_process
from automations.models import EmailQueueItem, Enrollment, EnrollmentStatus, QueueStatus
from automations.services.enrollments import enrollments_complete_finished
from customers.models import Customer, TimelineEvent
from customers.services import customer_update
from devtools.fakes.stripe.objects import stripe_event
from tests.automations.conftest import make_due

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def default_flows(db):
    # A transactional test elsewhere may have flushed the data migrations' rows (as in tests/automations/conftest.py).
    import_module("automations.migrations.0002_default_flows").create_defaults(apps, None)
    import_module("automations.migrations.0012_win_back_campaigns").mark_win_back_rules(apps, None)


def path(customer: Customer) -> list[str]:
    return [f"{m.from_stage}>{m.to_stage}" for m in customer.stage_transitions.order_by("id")]


def drain() -> None:
    email_queue_process(time_budget=30, sleep=lambda seconds: None)


def churned(fake_stripe, deliver, email: str):
    """An opted-in customer whose subscription has just ended: in Churned, enrolled in Win-back, nothing sent yet."""
    world = fake_stripe.add_subscription(email=email)
    deliver(stripe_event("customer.subscription.created", world.subscription))
    customer = Customer.objects.get(email=email)
    customer_update(customer=customer, opt_in_confirmed=True)
    sub_id = world.subscription["id"]
    fake_stripe.update(sub_id, status="canceled", canceled_at=int(time.time()), ended_at=int(time.time()))
    deliver(stripe_event("customer.subscription.deleted", fake_stripe.get(sub_id)))
    customer.refresh_from_db()
    assert customer.lifecycle_stage == "churned"
    return world, customer


def send_first_win_back_email(customer: Customer) -> Enrollment:
    enrollment = Enrollment.objects.get(customer=customer, rule__name="Win-back")
    first = enrollment.queue_items.order_by("scheduled_at").first()
    make_due(EmailQueueItem.objects.filter(pk=first.pk))
    drain()
    first.refresh_from_db()
    assert first.status == QueueStatus.SENT
    return enrollment


def test_the_first_win_back_email_sent_moves_a_churned_customer_to_win_back(fake_stripe, deliver):
    _, customer = churned(fake_stripe, deliver, "leaver@example.com")
    drain()  # queued, not due (three days after the cancellation): nothing has reached them
    customer.refresh_from_db()
    assert customer.lifecycle_stage == "churned"

    enrollment = send_first_win_back_email(customer)

    customer.refresh_from_db()
    assert customer.lifecycle_stage == "win_back"
    move = customer.stage_transitions.get(to_stage="win_back")
    assert move.cause == "first Win-back email sent: Win-back 1 - we saved your world"
    sent = TimelineEvent.objects.get(customer=customer, kind="email.sent", summary__startswith="Sent Win-back 1")
    assert sent.occurred_at == move.occurred_at
    assert enrollment.status == EnrollmentStatus.ACTIVE


@pytest.mark.parametrize(
    ("status", "comeback"),
    [("active", ["win_back>purchase", "purchase>onboarding"]), ("trialing", ["win_back>trial"])],
)
def test_a_customer_who_subscribes_again_leaves_win_back_and_its_emails(fake_stripe, deliver, status, comeback):
    world, customer = churned(fake_stripe, deliver, f"back-{status}@example.com")
    enrollment = send_first_win_back_email(customer)

    again = fake_stripe.add_subscription(
        customer=world.customer, product=world.product, status=status, created=int(time.time()) + 1
    )
    deliver(stripe_event("customer.subscription.created", again.subscription))

    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.EXITED
    assert enrollment.exit_reason.startswith("subscription.created")
    assert not enrollment.queue_items.filter(status=QueueStatus.PENDING).exists()
    assert path(customer)[-1 - len(comeback) :] == ["churned>win_back", *comeback]
    make_due()
    drain()
    assert path(customer)[-1 - len(comeback) :] == ["churned>win_back", *comeback]  # nobody is moved back to Churned


def test_a_win_back_campaign_that_ends_without_a_return_moves_the_customer_back_to_churned(fake_stripe, deliver):
    _, customer = churned(fake_stripe, deliver, "gone@example.com")
    enrollment = send_first_win_back_email(customer)

    make_due()
    drain()  # the last two emails go out and the enrollment completes

    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.COMPLETED
    customer.refresh_from_db()
    assert customer.lifecycle_stage == "churned"
    assert path(customer)[-2:] == ["churned>win_back", "win_back>churned"]
    back = customer.stage_transitions.get(from_stage="win_back", to_stage="churned")
    assert back.cause == "Win-back ended without a return (completed)"
    note = TimelineEvent.objects.get(customer=customer, kind="lifecycle.campaign_ended")
    assert note.occurred_at == back.occurred_at == enrollment.completed_at

    # The completion seen again (another drain, a second worker) moves nobody twice.
    enrollments_complete_finished(enrollment_ids={enrollment.pk})
    drain()
    assert path(customer)[-2:] == ["churned>win_back", "win_back>churned"]
    assert customer.stage_transitions.filter(to_stage="win_back").count() == 1
