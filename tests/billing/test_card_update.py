"""The card-update link in dunning emails: our signed link, which opens Stripe's card form only when clicked, and a
page that says what to do whenever it cannot (expired, changed, no Stripe customer, Stripe down, too many clicks)."""

import time
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache

from automations.queue_messages import message_for
from automations.render_context import links_context
from billing import stripe_api
from billing.card_update import PAGE_REQUESTS_PER_WINDOW
from billing.card_update_links import card_update_url
from tests.automations.factories import EmailTemplateFactory, QueuedEmailFactory
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limit():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def paying_customer(fake_stripe):
    stripe_customer = fake_stripe.add_customer(email="mia@example.com", name="Mia")
    return CustomerFactory(email="mia@example.com", name="Mia", stripe_customer_id=stripe_customer["id"])


def _path(url: str) -> str:
    return urlsplit(url).path


def test_a_valid_link_opens_stripes_card_form_for_that_customer(client, fake_stripe, paying_customer, settings):
    url = card_update_url(customer=paying_customer)
    assert url.startswith(settings.SITE_URL + "/billing/card-update/")
    assert fake_stripe.portal_sessions == []  # building the link (at send time) creates nothing at Stripe

    response = client.get(_path(url))

    assert response.status_code == 303
    [session] = fake_stripe.portal_sessions
    assert response["Location"] == session["url"]
    assert session["object"] == "billing_portal.session"
    assert session["customer"] == paying_customer.stripe_customer_id
    assert session["flow"]["type"] == "payment_method_update"
    assert session["return_url"] == settings.SITE_URL + "/billing/card-updated"
    assert response["Cache-Control"] == "no-store"


def test_a_lost_answer_is_asked_again_under_the_same_key_and_opens_one_session(client, fake_stripe, paying_customer):
    """Stripe made the session but its answer never arrived: stripe-python's retry carries the same Idempotency-Key,
    so Stripe answers with that same session instead of making a second one."""
    fake_stripe.lose_answer_next("POST", r"/v1/billing_portal/sessions")

    response = client.get(_path(card_update_url(customer=paying_customer)))

    assert response.status_code == 303
    [session] = fake_stripe.portal_sessions
    assert response["Location"] == session["url"]
    calls = fake_stripe.requests_to("POST", r"/v1/billing_portal/sessions")
    assert len(calls) == 2
    assert calls[0].header("idempotency-key") and calls[0].header("idempotency-key") == calls[1].header(
        "idempotency-key"
    )


def test_the_return_page_thanks_the_customer(client):
    response = client.get("/billing/card-updated")
    assert response.status_code == 200
    assert "Thank you" in response.content.decode()


def test_an_expired_link_explains_itself_and_creates_nothing(client, fake_stripe, paying_customer, settings):
    settings.BILLING_CARD_UPDATE_LINK_DAYS = 14
    real_time = time.time
    with mock.patch("time.time", lambda: real_time() - 15 * 86400):
        url = card_update_url(customer=paying_customer)

    response = client.get(_path(url))

    assert response.status_code == 410
    page = response.content.decode()
    assert "This link has expired" in page
    assert "update the card for your ModReady server" in page  # says what the link does
    assert "Open the newest payment reminder email" in page  # and what to do
    assert fake_stripe.portal_sessions == []


def test_a_link_a_day_before_expiry_still_works(client, fake_stripe, paying_customer):
    real_time = time.time
    with mock.patch("time.time", lambda: real_time() - 13 * 86400):
        url = card_update_url(customer=paying_customer)
    assert client.get(_path(url)).status_code == 303


@pytest.mark.parametrize(
    "change",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # the signature changed
        lambda token: "x" + token,  # the payload changed
        lambda token: "not-a-token",
    ],
)
def test_a_tampered_link_explains_itself_and_creates_nothing(client, fake_stripe, paying_customer, change):
    token = _path(card_update_url(customer=paying_customer)).rsplit("/", 1)[1]

    response = client.get(f"/billing/card-update/{change(token)}")

    assert response.status_code == 400
    assert "This link does not work" in response.content.decode()
    assert fake_stripe.portal_sessions == []


def test_a_link_signed_for_another_purpose_does_not_open_the_card_form(client, fake_stripe, paying_customer):
    from django.core import signing

    token = signing.dumps({"c": paying_customer.pk}, salt="automations.unsubscribe", compress=False)
    assert client.get(f"/billing/card-update/{token}").status_code == 400
    assert fake_stripe.portal_sessions == []


def test_a_customer_without_a_stripe_customer_gets_no_link_and_an_old_link_says_what_to_do(client, fake_stripe):
    customer = CustomerFactory(stripe_customer_id="cus_gone")
    url = card_update_url(customer=customer)
    customer.stripe_customer_id = ""
    customer.save(update_fields=["stripe_customer_id"])

    assert card_update_url(customer=customer) == ""
    response = client.get(_path(url))
    assert response.status_code == 404
    assert "We could not find a card to update" in response.content.decode()
    assert fake_stripe.portal_sessions == []


def test_a_customer_stripe_does_not_know_gets_the_same_page(client, fake_stripe):
    customer = CustomerFactory(stripe_customer_id="cus_unknown_to_stripe")

    response = client.get(_path(card_update_url(customer=customer)))

    assert response.status_code == 404
    assert "We could not find a card to update" in response.content.decode()
    assert fake_stripe.portal_sessions == []


def test_stripe_failing_asks_the_customer_to_try_again_in_a_minute(client, fake_stripe, paying_customer):
    fake_stripe.fail_next(500, times=3)

    response = client.get(_path(card_update_url(customer=paying_customer)))

    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "Please try again in a minute" in response.content.decode()
    assert fake_stripe.portal_sessions == []


def test_stripe_not_answering_in_time_asks_the_customer_to_try_again(client, fake_stripe, paying_customer, monkeypatch):
    monkeypatch.setattr(stripe_api, "PORTAL_TIMEOUT", (1, 0.3))
    monkeypatch.setattr(stripe_api, "PORTAL_RETRIES", 0)
    fake_stripe.latency = 1.0

    response = client.get(_path(card_update_url(customer=paying_customer)))

    assert response.status_code == 503
    assert "Please try again in a minute" in response.content.decode()


def test_too_many_clicks_from_one_address_are_refused_with_429(client, fake_stripe, paying_customer):
    path = _path(card_update_url(customer=paying_customer))
    for _ in range(PAGE_REQUESTS_PER_WINDOW):
        assert client.get(path).status_code == 303

    response = client.get(path)

    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert len(fake_stripe.portal_sessions) == PAGE_REQUESTS_PER_WINDOW
    other = client.get(path, REMOTE_ADDR="198.51.100.7")
    assert other.status_code == 303  # per client address


def test_the_link_page_only_answers_get(client, paying_customer):
    assert client.post(_path(card_update_url(customer=paying_customer))).status_code == 405


def test_a_dunning_email_carries_the_customers_link_and_it_opens_the_card_form(client, fake_stripe, paying_customer):
    template = EmailTemplateFactory(
        text_body="Your payment failed. Update your card: {{ card_update_url }}",
        html_body='<p><a href="{{ card_update_url }}">Update my card</a></p>',
    )
    item = QueuedEmailFactory(enrollment__customer=paying_customer, step__template=template)

    message = message_for(item, subscription=None, links=links_context())

    link = message["text"].split("Update your card: ", 1)[1].split()[0]
    assert link.startswith("http") and "/billing/card-update/" in link
    response = client.get(_path(link))
    assert response.status_code == 303
    assert [session["customer"] for session in fake_stripe.portal_sessions] == [paying_customer.stripe_customer_id]


def test_a_template_using_the_link_passes_the_save_time_check():
    template = EmailTemplateFactory.build(
        text_body="Update your card: {{ card_update_url or billing_url }}",
        html_body='<a href="{{ card_update_url or billing_url }}">Update my card</a>',
    )
    template.clean()  # raises ValidationError when a sample customer (one has no link) cannot be rendered


def test_the_fake_stripe_answers_portal_sessions_in_stripes_shape(fake_stripe):
    import requests

    known = fake_stripe.add_customer(email="mia@example.com")
    headers = {"Authorization": "Bearer sk_test_x"}
    form = {"return_url": "https://crm.example/back", "flow_data[type]": "payment_method_update"}

    created = requests.post(
        f"{fake_stripe.url}/v1/billing_portal/sessions", data={**form, "customer": known["id"]}, headers=headers
    )
    missing = requests.post(
        f"{fake_stripe.url}/v1/billing_portal/sessions", data={**form, "customer": "cus_nobody"}, headers=headers
    )

    session = created.json()
    assert created.status_code == 200
    assert session["object"] == "billing_portal.session" and session["id"].startswith("bps_")
    assert session["customer"] == known["id"] and session["return_url"] == "https://crm.example/back"
    assert session["flow"]["type"] == "payment_method_update" and session["url"]
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "resource_missing"
    assert missing.json()["error"]["param"] == "customer"


@pytest.mark.parametrize(
    ("flow", "param"),
    [
        ({"type": "subscription_cancel"}, "flow_data[subscription_cancel][subscription]"),
        (
            {"type": "payment_method_update", "after_completion": {"type": "redirect"}},
            "flow_data[after_completion][redirect][return_url]",
        ),
    ],
)
def test_the_fake_portal_refuses_a_flow_missing_what_stripe_requires(fake_stripe, paying_customer, flow, param):
    import stripe

    client = stripe.StripeClient("sk_test_" + "x" * 24, base_addresses={"api": stripe.api_base})
    params = {"customer": paying_customer.stripe_customer_id, "return_url": "https://a.example", "flow_data": flow}
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.billing_portal.sessions.create(params=params)
    assert refused.value.param == param
    assert fake_stripe.portal_sessions == []
