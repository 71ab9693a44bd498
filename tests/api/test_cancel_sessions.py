"""POST /api/v1/cancel-sessions/: the provisioning panel gets a signed, short-lived link for one customer."""

from urllib.parse import urlsplit

import pytest
from rest_framework.test import APIClient

from billing.retention.models import CancelSession
from tests.billing.factories import SubscriptionFactory
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/cancel-sessions/"


def test_the_panel_gets_a_link_for_the_customers_subscription(key_client, client, settings):
    subscription = SubscriptionFactory(status="active")

    response = key_client.post(URL, {"customer": subscription.customer_id}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    session = CancelSession.objects.get(pk=body["id"])
    assert session.subscription == subscription and session.customer == subscription.customer
    assert body["url"].startswith(settings.SITE_URL + "/billing/cancel/")
    assert (session.expires_at - session.created_at).total_seconds() == settings.BILLING_CANCEL_SESSION_MINUTES * 60
    page = client.get(urlsplit(body["url"]).path)
    assert page.status_code == 200 and "Why do you want to cancel?" in page.content.decode()


def test_a_retry_with_the_same_idempotency_key_gets_the_same_session(key_client):
    subscription = SubscriptionFactory(status="active")
    first = key_client.post(URL, {"customer": subscription.customer_id}, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    again = key_client.post(URL, {"customer": subscription.customer_id}, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    assert first.json()["id"] == again.json()["id"] and CancelSession.objects.count() == 1


def test_a_customer_without_a_current_subscription_is_a_409(key_client):
    ended = SubscriptionFactory(status="canceled")
    nobody = CustomerFactory()
    assert key_client.post(URL, {"customer": ended.customer_id}, format="json").status_code == 409
    assert key_client.post(URL, {"customer": nobody.pk}, format="json").status_code == 409
    assert key_client.post(URL, {"customer": 999999}, format="json").status_code == 404
    assert not CancelSession.objects.exists()


def test_several_subscriptions_need_the_one_named(key_client):
    first = SubscriptionFactory(status="active")
    second = SubscriptionFactory(status="active", customer=first.customer)
    unnamed = key_client.post(URL, {"customer": first.customer_id}, format="json")
    named = key_client.post(
        URL, {"customer": first.customer_id, "subscription": second.stripe_subscription_id}, format="json"
    )
    assert unnamed.status_code == 400 and named.status_code == 201
    assert CancelSession.objects.get().subscription == second


@pytest.mark.parametrize(
    "body", [{}, {"customer": "abc"}, {"customer": -1}, {"customer": 1, "subscription": "x" * 300}]
)
def test_bad_input_is_a_400(key_client, body):
    assert key_client.post(URL, body, format="json").status_code == 400


def test_without_a_key_or_the_permission_nothing_is_created(support_client):
    subscription = SubscriptionFactory(status="active")
    assert APIClient().post(URL, {"customer": subscription.customer_id}, format="json").status_code in (401, 403)
    assert support_client.post(URL, {"customer": subscription.customer_id}, format="json").status_code == 403
    assert not CancelSession.objects.exists()


def test_the_panel_reads_what_came_of_it(key_client):
    subscription = SubscriptionFactory(status="active")
    created = key_client.post(URL, {"customer": subscription.customer_id}, format="json").json()
    read = key_client.get(f"{URL}{created['id']}/")
    assert read.status_code == 200 and read.json()["outcome"] == "" and "url" not in read.json()
