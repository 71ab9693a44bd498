"""Billing's actions for Support (billing/support_actions.py): the card-update link by email and goodwill credits, each
audited like every staff action, each acting once however often it is posted."""

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from billing.card_update_links import card_update_token_read
from billing.models import CardUpdateLinkSend, GoodwillCredit
from billing.support_actions import (
    card_update_link_send,
    goodwill_credit_apply,
    goodwill_credit_grant,
    goodwill_credits_retry_pending,
)
from customers.events import domain_event_dispatch
from customers.models import DomainEvent, StaffAction, TimelineEvent
from customers.staff_actions import ActionRefused
from tests.automations.conftest import default_flows, make_due  # noqa: F401 (fixture)
from tests.billing.factories import SubscriptionFactory
from tests.customers.factories import CustomerFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_flows")]


@pytest.fixture
def paying(fake_stripe):
    stripe_customer = fake_stripe.add_customer(email="lena@example.com", name="Lena")
    customer = CustomerFactory(email="lena@example.com", name="Lena", stripe_customer_id=stripe_customer["id"])
    SubscriptionFactory(customer=customer, currency="eur")
    return customer


@pytest.fixture
def grant(run_on_commit):
    """goodwill_credit_grant as a request would see it: Stripe is asked once the action's transaction commits."""

    def run(**kwargs) -> GoodwillCredit:
        with run_on_commit():
            credit = goodwill_credit_grant(**kwargs)
        credit.refresh_from_db()
        return credit

    return run


def _balance_transactions(fake_stripe) -> list[dict]:
    return list(fake_stripe.objects["customer_balance_transactions"].values())


def test_the_card_update_link_goes_out_once_by_email_with_the_customers_own_link(
    paying, support_user, run_on_commit, settings
):
    from automations.drain import email_queue_process

    key = uuid.uuid4()
    with run_on_commit():
        done = card_update_link_send(customer=paying, actor=support_user, reason="ticket 42", request_key=key)
    with pytest.raises(ActionRefused, match="sent already"):
        card_update_link_send(customer=paying, actor=support_user, reason="ticket 42", request_key=key)

    event = DomainEvent.objects.get(name="card_update_link.requested")
    assert event.key == f"staff-action:{done.audit.pk}:card-update-link"
    domain_event_dispatch(event_id=event.pk)
    make_due()
    email_queue_process(sleep=lambda seconds: None, time_budget=30)

    [message] = mail.outbox
    assert message.to == ["lena@example.com"]
    link = next(word for word in message.body.split() if word.startswith(settings.SITE_URL + "/billing/card-update/"))
    assert card_update_token_read(link.rsplit("/", 1)[1]).id == paying.pk
    audit = StaffAction.objects.get(action="card_update_link_send")
    assert (audit.actor, audit.reason) == (support_user, "ticket 42")
    assert CardUpdateLinkSend.objects.get().staff_action == audit
    assert TimelineEvent.objects.filter(kind="staff.card_update_link_send", customer=paying).exists()


def test_no_link_for_a_customer_without_a_stripe_customer(support_user):
    customer = CustomerFactory(stripe_customer_id="")
    with pytest.raises(ActionRefused, match="no Stripe customer"):
        card_update_link_send(customer=customer, actor=support_user, reason="")
    assert not StaffAction.objects.exists()


def test_a_goodwill_credit_is_one_stripe_balance_credit_under_our_own_key(
    paying, fake_stripe, support_user, settings, grant
):
    settings.BILLING_GOODWILL_CREDIT_LIMIT = 2000
    key = uuid.uuid4()

    credit = grant(customer=paying, actor=support_user, amount=500, reason="outage", request_key=key)
    again = grant(customer=paying, actor=support_user, amount=500, reason="outage", request_key=key)

    assert again.pk == credit.pk and credit.status == "applied"
    [transaction] = _balance_transactions(fake_stripe)
    assert (transaction["amount"], transaction["currency"], transaction["customer"]) == (
        -500,
        "eur",
        paying.stripe_customer_id,
    )
    assert credit.stripe_balance_transaction_id == transaction["id"]
    [call] = fake_stripe.requests_to("POST", r"/v1/customers/[^/]+/balance_transactions")
    assert call.header("idempotency-key") == f"goodwill-credit:{credit.pk}"
    assert StaffAction.objects.get(action="goodwill_credit").details["amount"] == 500


def test_above_the_staff_limit_is_refused_with_the_figures_and_changes_nothing(
    paying, fake_stripe, support_user, settings, grant
):
    settings.BILLING_GOODWILL_CREDIT_LIMIT = 1000
    grant(customer=paying, actor=support_user, amount=700, reason="outage")

    with pytest.raises(ActionRefused, match=r"granted 7\.00 of 10\.00 in the last 30 days"):
        grant(customer=paying, actor=support_user, amount=400, reason="again")

    assert GoodwillCredit.objects.count() == 1
    assert len(_balance_transactions(fake_stripe)) == 1
    assert StaffAction.objects.filter(action="goodwill_credit").count() == 1


def test_a_lost_answer_stays_pending_and_is_asked_again_under_the_same_key(paying, fake_stripe, support_user, grant):
    # Stripe acts but no answer arrives, three times (stripe-python's retries too): the credit stays pending.
    fake_stripe.lose_answer_next("POST", r"/v1/customers/[^/]+/balance_transactions", status=502, times=3)

    credit = grant(customer=paying, actor=support_user, amount=300, reason="late server")
    assert credit.status == "pending"

    retried = goodwill_credit_apply(credit_id=credit.pk)

    assert retried.status == "applied"
    assert len(_balance_transactions(fake_stripe)) == 1  # Stripe credited once
    keys = {call.header("idempotency-key") for call in fake_stripe.requests_to("POST", r"/v1/customers/.+")}
    assert keys == {f"goodwill-credit:{credit.pk}"}


def test_no_second_credit_under_a_new_key_while_the_first_is_unanswered(paying, fake_stripe, support_user, grant):
    # A reloaded page has a new request key: granting again while Stripe's answer is lost could credit twice.
    fake_stripe.lose_answer_next("POST", r"/v1/customers/[^/]+/balance_transactions", status=502, times=3)
    first = grant(customer=paying, actor=support_user, amount=300, reason="late server", request_key=uuid.uuid4())
    assert first.status == "pending"

    with pytest.raises(ActionRefused, match="still waiting for Stripe's answer"):
        grant(customer=paying, actor=support_user, amount=300, reason="late server", request_key=uuid.uuid4())

    assert GoodwillCredit.objects.count() == 1 and len(_balance_transactions(fake_stripe)) == 1
    assert goodwill_credit_apply(credit_id=first.pk).status == "applied"
    second = grant(customer=paying, actor=support_user, amount=200, reason="another outage")
    assert second.status == "applied" and len(_balance_transactions(fake_stripe)) == 2


def test_a_credit_unanswered_past_stripes_key_window_is_not_asked_again(paying, fake_stripe, support_user, grant):
    # Stripe forgets an idempotency key after 24 hours: asking again then would credit a second time.
    fake_stripe.lose_answer_next("POST", r"/v1/customers/[^/]+/balance_transactions", status=502, times=3)
    credit = grant(customer=paying, actor=support_user, amount=300, reason="late server")
    assert credit.status == "pending" and len(_balance_transactions(fake_stripe)) == 1
    GoodwillCredit.objects.filter(pk=credit.pk).update(
        created_at=timezone.now() - timedelta(hours=25), updated_at=timezone.now() - timedelta(hours=25)
    )
    fake_stripe.idempotency_keys_age(25 * 3600)

    assert goodwill_credits_retry_pending() == 0
    again = goodwill_credit_apply(credit_id=credit.pk)

    assert again.status == "pending" and "check the customer's balance in Stripe" in again.error
    assert len(_balance_transactions(fake_stripe)) == 1  # credited once, never again under the forgotten key


def test_a_goodwill_credit_needs_a_reason_and_a_subscription(fake_stripe, support_user, grant):
    stripe_customer = fake_stripe.add_customer(email="nosub@example.com")
    customer = CustomerFactory(email="nosub@example.com", stripe_customer_id=stripe_customer["id"])
    with pytest.raises(ActionRefused, match="needs a reason"):
        grant(customer=customer, actor=support_user, amount=100, reason=" ")
    with pytest.raises(ActionRefused, match="no current subscription"):
        grant(customer=customer, actor=support_user, amount=100, reason="sorry")
    assert _balance_transactions(fake_stripe) == []


def test_support_takes_both_from_the_customer_page_marketing_may_not(
    client, paying, support_user, marketing_user, run_on_commit
):
    client.force_login(support_user)
    page = client.get(reverse("admin:customers_customer_change", args=[paying.pk])).content.decode()
    assert 'id="action-card-link"' in page and 'id="action-goodwill"' in page

    url = reverse("admin:customers_customer_action", args=[paying.pk, "goodwill_credit"])
    with run_on_commit():
        response = client.post(url, {"amount": "250", "reason": "lag", "request_key": str(uuid.uuid4())}, follow=True)
    assert "Done: asked Stripe for a goodwill credit of 2.50 EUR" in response.content.decode()
    assert GoodwillCredit.objects.get().status == "applied"

    client.force_login(marketing_user)
    assert client.post(url, {"amount": "250", "reason": "lag"}).status_code == 403
    link = reverse("admin:customers_customer_action", args=[paying.pk, "card_update_link_send"])
    assert client.post(link, {"reason": "x"}).status_code == 403
