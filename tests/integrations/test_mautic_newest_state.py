"""Issue 18: the newest Mautic state wins. Retries and late webhooks carry old copies of a contact; applying them
would opt an opted-out contact back in (`opt_in_confirmed` gates all marketing email) or take a VIP's flag and code
away. And a contact deleted in Mautic ends its run at once.

Signed webhooks through HTTP against the fake Mautic, which dates every change (one-second resolution, each change
the next second, ids as strings, empty groups as `[]`)."""

from datetime import timedelta

import pytest

from customers.models import Customer
from integrations.models import RunStatus, WorkflowRun
from integrations.runs import run_execute

pytestmark = pytest.mark.django_db


def _customer() -> Customer:
    return Customer.objects.get(email="ada@example.com")


def test_an_opt_out_between_a_failure_and_its_retry_wins(fakes, deliver_mautic):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
    fakes.discord.invite_limit = 0  # the invite step fails: the run waits for its retry
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    failed = WorkflowRun.objects.get()
    assert failed.status == RunStatus.FAILED and _customer().opt_in_confirmed is True

    fakes.mautic.update_contact(contact_id, opt_in_confirmed=False)  # the contact says no in Mautic
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    assert _customer().opt_in_confirmed is False

    fakes.discord.invite_limit = 1000
    assert run_execute(run_id=failed.pk) == RunStatus.SKIPPED  # the retry, hours later

    assert _customer().opt_in_confirmed is False
    assert fakes.discord.invites == {} and fakes.mautic.sent_emails == []
    failed.refresh_from_db()
    assert "opt_in_confirmed is not true" in failed.outcome


def test_a_retry_acts_on_the_contact_as_it_is_now_not_on_its_payload(fakes, deliver_mautic):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True, promo_code="FIRST")
    fakes.discord.invite_limit = 0
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    run = WorkflowRun.objects.get()
    # Changed in Mautic, and the webhook of that change was lost (Mautic does not retry).
    fakes.mautic.update_contact(contact_id, promo_code="SECOND", vip_status=True)
    fakes.discord.invite_limit = 1000

    assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED

    assert _customer().promo_code == "SECOND" and _customer().vip_status is True
    assert fakes.mautic.contact(contact_id)["discord_invite_link_vip"]  # acted on the VIP it is now
    assert fakes.mautic.sent_emails == [("11", contact_id)]


def test_a_late_contact_created_webhook_does_not_reset_a_vip(fakes, deliver_mautic):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
    created = fakes.mautic.webhook_body([contact_id], event="mautic.lead_post_save_new")  # sent now, arrives late
    fakes.mautic.update_contact(contact_id, vip_status=True, promo_code="VIP-ADA7")
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    assert (_customer().vip_status, _customer().promo_code) == (True, "VIP-ADA7")
    invites_before = len(fakes.discord.invites)

    assert deliver_mautic(created).status_code == 202

    assert (_customer().vip_status, _customer().promo_code) == (True, "VIP-ADA7")
    late = WorkflowRun.objects.order_by("-id").first()
    assert late.status == RunStatus.SKIPPED and "older than the data we hold" in late.outcome
    assert len(fakes.discord.invites) == invites_before  # and no Basic invite for a VIP from the stale copy


def test_several_events_in_one_post_the_newest_state_wins(fakes, deliver_mautic):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True, promo_code="A")
    older = fakes.mautic.webhook_body([contact_id])
    fakes.mautic.update_contact(contact_id, opt_in_confirmed=False, promo_code="B")
    newer = fakes.mautic.webhook_body([contact_id])

    deliver_mautic(fakes.mautic.combined(newer, older))  # queued mode: one POST, not in the order of the changes

    assert (_customer().opt_in_confirmed, _customer().promo_code) == (False, "B")
    assert fakes.discord.invites == {} and fakes.mautic.sent_emails == []


def test_changes_within_one_second_are_settled_by_reading_mautic(fakes, deliver_mautic):
    fakes.mautic.clock_step = timedelta(0)  # every change below carries the same dateModified
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
    opted_in = fakes.mautic.webhook_body([contact_id])
    fakes.mautic.update_contact(contact_id, opt_in_confirmed=False)
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    assert _customer().opt_in_confirmed is False

    deliver_mautic(opted_in)  # same second, other values: cannot be ordered by date, so Mautic is asked

    assert _customer().opt_in_confirmed is False
    assert fakes.discord.invites == {} and fakes.mautic.sent_emails == []


def test_a_contact_deleted_before_its_webhook_is_processed_ends_at_once_as_skipped(fakes, deliver_mautic):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
    body = fakes.mautic.webhook_body([contact_id])
    fakes.mautic.delete_contact(contact_id)

    assert deliver_mautic(body).status_code == 202

    run = WorkflowRun.objects.get()
    assert run.status == RunStatus.SKIPPED and run.outcome == "contact no longer exists in Mautic"
    assert run.next_attempt_at is None and run.attempts == 1  # not retried
    assert run.steps.get(name="mautic.reread").outcome == "skipped"
    assert fakes.discord.invites == {}


def test_a_contact_deleted_before_the_retry_ends_the_retry_as_skipped(fakes, deliver_mautic):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
    fakes.discord.invite_limit = 0
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    run = WorkflowRun.objects.get()
    assert run.status == RunStatus.FAILED
    fakes.mautic.delete_contact(contact_id)

    assert run_execute(run_id=run.pk) == RunStatus.SKIPPED

    run.refresh_from_db()
    assert run.outcome == "contact no longer exists in Mautic" and run.next_attempt_at is None


def test_a_late_contact_created_webhook_after_the_vip_purchase_keeps_the_vip(
    fakes, fake_stripe, settings, deliver, deliver_mautic
):
    from devtools.fakes.stripe.objects import stripe_event

    contact_id = fakes.mautic.add_contact(email="buyer@example.com", opt_in_confirmed=True)
    created = fakes.mautic.webhook_body([contact_id], event="mautic.lead_post_save_new")  # delayed in Mautic's queue
    buyer = fake_stripe.add_customer(email="buyer@example.com", name="Bea Buyer")
    product = fake_stripe.add_product(name="VIP reservation", modready=False)
    settings.STRIPE_VIP_RESERVATION_PRODUCT_ID = product["id"]
    price = fake_stripe.add_price(product=product, unit_amount=2500)
    session = fake_stripe.add_checkout_session(customer=buyer, prices=[price], mode="payment", payment_status="paid")
    deliver(stripe_event("checkout.session.completed", session))  # workflow 2: VIP and promo code, here and in Mautic
    customer = Customer.objects.get(email="buyer@example.com")
    assert customer.vip_status is True and customer.promo_code

    deliver_mautic(created)  # arrives before the update webhook of workflow 2's own write

    customer.refresh_from_db()
    assert customer.vip_status is True and customer.promo_code == fakes.mautic.contact(contact_id)["promo_code"]
    assert WorkflowRun.objects.get(kind="contact_invite").status == RunStatus.SKIPPED
