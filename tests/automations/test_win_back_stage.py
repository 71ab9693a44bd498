"""Which rules move customers to Win-back and back, and when they do not (customers/lifecycle.py, "Churned ->
Win-back -> Churned"). The whole flow through Stripe's webhooks is in tests/billing/test_win_back.py."""

import pytest

from automations.models import AutomationRule, EmailQueueItem, Enrollment, EnrollmentStatus, QueueStatus
from automations.services.campaigns import campaign_stage_on_sent
from automations.services.enrollments import enrollment_exit
from customers.lifecycle import Stage
from customers.models import Customer, StageTransition
from tests.customers.factories import CustomerFactory

from .conftest import make_due

pytestmark = pytest.mark.django_db

CANCELED = {"subscription_id": "sub_1", "product_id": "prod_modded", "cancellation_reason": "too_expensive"}


def moves(customer: Customer) -> list[str]:
    return [f"{m.from_stage}>{m.to_stage}" for m in customer.stage_transitions.order_by("id")]


def first_email_sent(customer: Customer, drain) -> EmailQueueItem:
    first = EmailQueueItem.objects.filter(customer=customer).order_by("scheduled_at").first()
    make_due(EmailQueueItem.objects.filter(pk=first.pk))
    drain()
    first.refresh_from_db()
    return first


def test_the_default_win_back_rule_is_marked_as_a_campaign_marketing_can_see():
    assert AutomationRule.objects.get(trigger="subscription.canceled").get_moves_to_stage_display() == "Win-back"
    assert set(
        AutomationRule.objects.exclude(trigger="subscription.canceled").values_list("moves_to_stage", flat=True)
    ) == {""}


def test_a_duplicate_send_record_moves_the_customer_once(publish, drain):
    customer = CustomerFactory(lifecycle_stage=Stage.CHURNED, opt_in_confirmed=True)
    publish("subscription.canceled", customer, CANCELED)
    first = first_email_sent(customer, drain)
    assert first.status == QueueStatus.SENT

    item = EmailQueueItem.objects.select_related("step__rule", "step__template", "customer").get(pk=first.pk)
    assert campaign_stage_on_sent(items=[item], sent_at=item.sent_at) == 0

    assert moves(customer) == ["churned>win_back"]


def test_no_move_without_an_email_actually_sent(publish, drain):
    """No marketing consent: the win-back emails are suppressed, the campaign reached nobody, nobody moves."""
    customer = CustomerFactory(lifecycle_stage=Stage.CHURNED, opt_in_confirmed=False)
    publish("subscription.canceled", customer, CANCELED)
    make_due()
    drain()

    assert set(EmailQueueItem.objects.filter(customer=customer).values_list("status", flat=True)) == {"suppressed"}
    assert Enrollment.objects.get(customer=customer).status == EnrollmentStatus.COMPLETED
    assert moves(customer) == []


def test_a_rule_not_marked_as_a_campaign_moves_nobody(publish, drain):
    AutomationRule.objects.filter(trigger="subscription.canceled").update(moves_to_stage="")
    customer = CustomerFactory(lifecycle_stage=Stage.CHURNED, opt_in_confirmed=True)
    publish("subscription.canceled", customer, CANCELED)
    make_due()
    drain()

    assert EmailQueueItem.objects.filter(customer=customer, status=QueueStatus.SENT).count() == 3
    assert moves(customer) == []


def test_a_customer_who_is_not_churned_stays_where_they_are(publish, drain):
    """One of two servers cancelled: still subscribed (onboarding), the win-back email moves nothing."""
    customer = CustomerFactory(lifecycle_stage=Stage.ONBOARDING, opt_in_confirmed=True)
    publish("subscription.canceled", customer, CANCELED)
    make_due()
    drain()

    customer.refresh_from_db()
    assert customer.lifecycle_stage == Stage.ONBOARDING
    assert moves(customer) == []


def test_removed_by_staff_during_the_campaign_goes_back_to_churned_but_a_comeback_exit_does_not(publish, drain):
    removed = CustomerFactory(lifecycle_stage=Stage.CHURNED, opt_in_confirmed=True)
    buying = CustomerFactory(lifecycle_stage=Stage.CHURNED, opt_in_confirmed=True)
    for customer in (removed, buying):
        publish("subscription.canceled", customer, CANCELED)
        first_email_sent(customer, drain)

    enrollment_exit(enrollment=Enrollment.objects.get(customer=removed), reason="Removed by staff: asked us to stop")
    # A checkout is a comeback: the campaign ends here, and the customer has bought (Purchase); billing moves them
    # on to Onboarding when the subscription starts.
    publish("checkout.completed", buying, {"session_id": "cs_1", "product_ids": ["prod_modded"]})

    assert moves(removed) == ["churned>win_back", "win_back>churned"]
    assert StageTransition.objects.get(customer=removed, to_stage="churned").cause == (
        "Win-back ended without a return (exited: Removed by staff: asked us to stop)"
    )
    assert Enrollment.objects.get(customer=buying).status == EnrollmentStatus.EXITED
    assert moves(buying) == ["churned>win_back", "win_back>purchase"]


def test_the_customer_stays_in_win_back_while_another_campaign_still_runs(publish, drain):
    customer = CustomerFactory(lifecycle_stage=Stage.CHURNED, opt_in_confirmed=True)
    publish("subscription.canceled", customer, CANCELED)
    publish("subscription.canceled", customer, {**CANCELED, "subscription_id": "sub_2"})  # their second server
    make_due()
    first, second = Enrollment.objects.filter(customer=customer).order_by("pk")
    EmailQueueItem.objects.filter(enrollment=second).update(next_attempt_at=first.enrolled_at.replace(year=2100))
    drain()  # the first campaign sends all its emails and completes; the second still waits

    first.refresh_from_db()
    assert first.status == EnrollmentStatus.COMPLETED
    assert moves(customer) == ["churned>win_back"]

    make_due()
    drain()
    assert moves(customer) == ["churned>win_back", "win_back>churned"]


def _trials_file(path, email, signed_up_at):
    import sqlite3

    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE trials (email, created_at, game, plan)")
    connection.execute("INSERT INTO trials VALUES (?, ?, 'valheim', '4gb')", (email, signed_up_at.isoformat()))
    connection.commit()
    connection.close()
    return str(path)


def test_a_website_trial_ends_the_campaign_and_its_pending_emails(publish, drain, run_on_commit, tmp_path):
    """The trials sync publishes trial.started, an exit event of the win-back rule: no more win-back emails."""
    from django.utils import timezone

    from customers.models import DomainEvent
    from integrations.trials.sync import trials_sync

    customer = CustomerFactory(lifecycle_stage=Stage.CHURNED, opt_in_confirmed=True)
    publish("subscription.canceled", customer, CANCELED)
    first_email_sent(customer, drain)
    path = _trials_file(tmp_path / "trials.db", customer.email, timezone.now())

    with run_on_commit():
        trials_sync(path=path, table="trials")
    from customers.events import domain_event_dispatch

    for event in DomainEvent.objects.filter(name="trial.started"):
        domain_event_dispatch(event_id=event.pk)

    customer.refresh_from_db()
    assert customer.lifecycle_stage == Stage.TRIAL
    assert Enrollment.objects.get(customer=customer).status == EnrollmentStatus.EXITED
    assert not EmailQueueItem.objects.filter(customer=customer, status=QueueStatus.PENDING).exists()
    assert moves(customer) == ["churned>win_back", "win_back>trial"]


def test_an_old_website_trial_found_by_the_first_sync_starts_no_trial_emails(run_on_commit, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    from customers.models import DomainEvent
    from integrations.trials.sync import trials_sync

    path = _trials_file(tmp_path / "trials.db", "old@example.com", timezone.now() - timedelta(days=60))
    with run_on_commit():
        result = trials_sync(path=path, table="trials")

    assert result.moved_to_trial == 1
    assert not DomainEvent.objects.filter(name="trial.started").exists()


def test_a_purchase_without_a_subscription_moves_the_customer_on_from_win_back(publish, drain):
    """A VIP reservation ends the campaign (checkout.completed) and no subscription follows: the customer bought, so
    they are in Purchase, not left in Win-back with no campaign running."""
    customer = CustomerFactory(lifecycle_stage=Stage.CHURNED, opt_in_confirmed=True)
    publish("subscription.canceled", customer, CANCELED)
    first_email_sent(customer, drain)

    publish("checkout.completed", customer, {"checkout_session_id": "cs_vip_1", "vip": True})
    publish("checkout.completed", customer, {"checkout_session_id": "cs_vip_1", "vip": True})  # a duplicate

    customer.refresh_from_db()
    assert customer.lifecycle_stage == Stage.PURCHASE
    assert Enrollment.objects.get(customer=customer).status == EnrollmentStatus.EXITED
    assert not EmailQueueItem.objects.filter(customer=customer, status=QueueStatus.PENDING).exists()
    assert moves(customer) == ["churned>win_back", "win_back>purchase"]
