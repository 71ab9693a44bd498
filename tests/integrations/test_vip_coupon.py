"""Workflow 2: a paid VIP reservation -> Shopware promo code -> Mautic (vip_status, promo_code) -> coupon email."""

import pytest

from customers.models import Customer
from devtools.fakes.stripe.objects import stripe_event
from integrations.models import PromoCode, RunStatus, WorkflowRun
from integrations.runs import run_execute

pytestmark = pytest.mark.django_db


@pytest.fixture
def vip_world(fakes, fake_stripe, settings):
    """A Stripe customer and the VIP reservation product, configured as such."""
    buyer = fake_stripe.add_customer(email="buyer@example.com", name="Bea Buyer")
    product = fake_stripe.add_product(name="VIP reservation", modready=False)
    settings.STRIPE_VIP_RESERVATION_PRODUCT_ID = product["id"]
    price = fake_stripe.add_price(product=product, unit_amount=2500)

    def checkout(*, payment_status="paid", prices=None):
        return fake_stripe.add_checkout_session(
            customer=buyer, prices=prices or [price], mode="payment", payment_status=payment_status
        )

    return checkout


def shopware_creates(fakes):
    return fakes.shopware.requests_to("POST", "/api/promotion-individual-code")


def test_paid_vip_reservation_gets_a_code_in_shopware_then_mautic_and_the_email(fakes, vip_world, deliver):
    session = vip_world()

    deliver(stripe_event("checkout.session.completed", session))

    promo = PromoCode.objects.get(checkout_session_id=session["id"])
    assert list(fakes.shopware.codes.values()) == [
        {"id": promo.shopware_id, "code": promo.code, "promotionId": fakes.shopware.promotions.copy().pop()}
    ]
    [contact] = [c for c in fakes.mautic.contacts.values() if c["email"] == "buyer@example.com"]
    assert (contact["vip_status"], contact["promo_code"]) == ("1", promo.code)
    assert fakes.mautic.sent_emails == [("13", str(contact["id"]))]
    customer = Customer.objects.get(email="buyer@example.com")
    assert customer.vip_status is True and customer.promo_code == promo.code
    run = WorkflowRun.objects.get(kind="vip_coupon")
    assert run.status == RunStatus.SUCCEEDED and run.customer == customer
    assert customer.timeline_events.filter(kind="workflow.vip_coupon.shopware.code").exists()


def test_an_existing_mautic_contact_is_found_by_exact_email_and_updated(fakes, vip_world, deliver):
    fakes.mautic.add_contact(email="buyer@example.com.au", opt_in_confirmed=False)  # a prefix match must not win
    contact_id = fakes.mautic.add_contact(email="Buyer@Example.com", opt_in_confirmed=False)

    deliver(stripe_event("checkout.session.completed", vip_world()))

    assert len(fakes.mautic.contacts) == 2
    assert fakes.mautic.contact(contact_id)["vip_status"] == "1"
    assert fakes.mautic.sent_emails == [("13", contact_id)]
    assert [m for m, _, _ in fakes.mautic.edits] == ["PATCH"]


def test_shopware_failure_writes_nothing_to_mautic_then_the_retry_uses_the_same_code(fakes, vip_world, deliver):
    fakes.shopware.fail_creates_next(503)
    session = vip_world()

    deliver(stripe_event("checkout.session.completed", session))

    run = WorkflowRun.objects.get(kind="vip_coupon")
    assert run.status == RunStatus.FAILED and "shopware" in run.last_error
    assert run.next_attempt_at is not None
    assert fakes.mautic.requests == [] and fakes.mautic.sent_emails == []
    code = PromoCode.objects.get().code

    assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED
    assert [c["code"] for c in fakes.shopware.codes.values()] == [code]
    assert fakes.mautic.sent_emails and PromoCode.objects.get().code == code


def test_unknown_outcome_does_not_create_a_second_code(fakes, vip_world, deliver):
    fakes.shopware.lose_next_answer()  # Shopware creates it, the answer never arrives
    deliver(stripe_event("checkout.session.completed", vip_world()))
    run = WorkflowRun.objects.get(kind="vip_coupon")
    assert run.status == RunStatus.FAILED and fakes.mautic.sent_emails == []

    assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED

    assert len(fakes.shopware.codes) == 1
    assert len(shopware_creates(fakes)) == 1  # the retry asked first and did not create again
    assert len(fakes.mautic.sent_emails) == 1


def test_a_duplicate_answer_for_our_own_id_counts_as_created(fakes, vip_world, deliver, monkeypatch):
    from integrations.workflows import vip_coupon

    session = vip_world()
    shopware_id = vip_coupon.shopware_id_for(session["id"])
    monkeypatch.setattr(vip_coupon, "new_code", lambda: "VIP-KNOWNCODE1")
    # An earlier process created it and died before recording that.
    fakes.shopware.codes[shopware_id] = {"id": shopware_id, "code": "VIP-KNOWNCODE1", "promotionId": "x"}

    deliver(stripe_event("checkout.session.completed", session))

    assert WorkflowRun.objects.get(kind="vip_coupon").status == RunStatus.SUCCEEDED
    assert len(fakes.shopware.codes) == 1 and len(fakes.mautic.sent_emails) == 1


def test_a_session_without_the_vip_product_is_ignored(fakes, fake_stripe, vip_world, deliver):
    other = fake_stripe.add_price(product=fake_stripe.add_product(name="ModReady Server"))
    deliver(stripe_event("checkout.session.completed", vip_world(prices=[other])))

    assert fakes.shopware.codes == {} and fakes.mautic.requests == []
    assert PromoCode.objects.count() == 0
    assert WorkflowRun.objects.get(kind="vip_coupon").status == RunStatus.SKIPPED


def test_unpaid_session_is_ignored_until_the_async_payment_succeeds(fakes, fake_stripe, vip_world, deliver):
    session = vip_world(payment_status="unpaid")

    deliver(stripe_event("checkout.session.completed", session))

    assert WorkflowRun.objects.filter(kind="vip_coupon").count() == 0
    assert fakes.shopware.codes == {} and PromoCode.objects.count() == 0

    paid = fake_stripe.update(session["id"], payment_status="paid")
    deliver(stripe_event("checkout.session.async_payment_succeeded", paid))

    assert WorkflowRun.objects.get(kind="vip_coupon").status == RunStatus.SUCCEEDED
    assert len(fakes.shopware.codes) == 1 and len(fakes.mautic.sent_emails) == 1


def test_a_repeated_checkout_event_yields_one_code(fakes, vip_world, deliver):
    session = vip_world()
    deliver(stripe_event("checkout.session.completed", session))
    deliver(stripe_event("checkout.session.completed", session))  # a new event id, same session

    assert PromoCode.objects.count() == 1 and len(fakes.shopware.codes) == 1
    assert len(fakes.mautic.sent_emails) == 1


def test_a_code_taken_in_another_promotion_is_replaced_and_the_new_one_is_emailed(
    fakes, vip_world, deliver, monkeypatch
):
    from integrations.workflows import vip_coupon

    fakes.shopware.add_code("VIP-TAKEN00001")  # another campaign's promotion holds this code
    codes = iter(["VIP-TAKEN00001", "VIP-FRESH00002"])
    monkeypatch.setattr(vip_coupon, "new_code", lambda: next(codes))
    session = vip_world()

    deliver(stripe_event("checkout.session.completed", session))

    run = WorkflowRun.objects.get(kind="vip_coupon")
    assert run.status == RunStatus.SUCCEEDED
    promo = PromoCode.objects.get(checkout_session_id=session["id"])
    assert promo.code == "VIP-FRESH00002"
    assert fakes.shopware.codes[promo.shopware_id]["code"] == "VIP-FRESH00002"
    # Our id was read back before the code was given up as someone else's.
    assert fakes.shopware.requests_to("GET", f"/api/promotion-individual-code/{promo.shopware_id}")
    [contact] = [c for c in fakes.mautic.contacts.values() if c["email"] == "buyer@example.com"]
    assert contact["promo_code"] == "VIP-FRESH00002" and len(fakes.mautic.sent_emails) == 1
    assert Customer.objects.get(email="buyer@example.com").promo_code == "VIP-FRESH00002"
    assert "VIP-TAKEN00001 already taken" in run.steps.get(name="shopware.code").detail


def test_many_purchases_share_one_shopware_token(fakes, vip_world, deliver):
    for _ in range(4):
        deliver(stripe_event("checkout.session.completed", vip_world()))

    assert set(WorkflowRun.objects.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}
    assert len(fakes.shopware.codes) == 4
    assert fakes.shopware.token_count == 1
