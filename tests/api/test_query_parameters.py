"""Query strings a tool (or an attacker) may send: each gets a 400 in the documented error shape, never a 500 and
never a silently unfiltered list."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.api.conftest import ids
from tests.customers.factories import CustomerFactory, TimelineEventFactory

pytestmark = pytest.mark.django_db

LISTS = [
    "/api/v1/customers/",
    "/api/v1/customers/{customer}/timeline/",
    "/api/v1/customers/{customer}/stage-history/",
    "/api/v1/customers/{customer}/enrollments/",
    "/api/v1/subscriptions/",
    "/api/v1/automation-rules/",
    "/api/v1/email-queue-items/",
    "/api/v1/tickets/",
    "/api/v1/workflow-runs/",
    "/api/v1/analytics/email/",
]
PAGINATED = [url for url in LISTS if "automation-rules" not in url and "analytics" not in url]


def hand_made_cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def assert_validation_error(response, attr):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "validation_error"
    assert {"code", "detail", "attr"} <= set(body["errors"][0])
    assert body["errors"][0]["attr"] == attr, body


@pytest.mark.parametrize("value", ["²", "١٢", "\U0001d7d3", "5²"])
@pytest.mark.parametrize("url", PAGINATED)
def test_a_non_ascii_digit_page_size_is_a_400(admin_client_api, customer, url, value):
    response = admin_client_api.get(url.format(customer=customer.pk), {"page_size": value})
    assert_validation_error(response, "page_size")


@pytest.mark.parametrize(
    "cursor",
    [
        hand_made_cursor("p=abc"),
        hand_made_cursor("p=99999999999999999999999"),
        hand_made_cursor("p=2026-01-01T00:00:00+16:02"),
        hand_made_cursor("p=\x00"),
        hand_made_cursor("o=²"),
        "not base64 at all",
    ],
)
@pytest.mark.parametrize("url", PAGINATED)
def test_a_hand_made_cursor_is_a_400(admin_client_api, customer, url, cursor):
    TimelineEventFactory(customer=customer)
    response = admin_client_api.get(url.format(customer=customer.pk), {"cursor": cursor})
    assert_validation_error(response, "cursor")


def test_a_cursor_from_a_next_link_still_works(admin_client_api, customer):
    TimelineEventFactory.create_batch(3, customer=customer)
    first = admin_client_api.get(f"/api/v1/customers/{customer.pk}/timeline/", {"page_size": 2})
    second = admin_client_api.get(first.json()["next"])
    assert len(ids(first)) == 2 and len(ids(second)) == 1


def test_analytics_with_a_future_since_and_no_until_is_an_empty_answer(marketing_client):
    future = timezone.now().date() + timedelta(days=10)
    response = marketing_client.get("/api/v1/analytics/email/", {"since": str(future)})
    assert response.status_code == 200, response.content
    assert response.json()["since"] == str(future)
    assert response.json()["until"] == str(timezone.now().date())
    assert response.json()["rules"] == []


def test_customers_filter_by_email_exactly_and_in_any_letter_case(key_client):
    maria = CustomerFactory(email="Maria@Example.com")
    CustomerFactory(email="maria@example.com.evil")
    CustomerFactory(email="xmaria@example.com")

    assert ids(key_client.get("/api/v1/customers/", {"email": "maria@example.com"})) == [maria.pk]
    assert ids(key_client.get("/api/v1/customers/", {"email": "MARIA@EXAMPLE.COM"})) == [maria.pk]
    assert ids(key_client.get("/api/v1/customers/", {"email": "nobody@example.com"})) == []
    assert_validation_error(key_client.get("/api/v1/customers/", {"email": ""}), "email")


@pytest.mark.parametrize("url", LISTS)
def test_an_unknown_query_parameter_is_a_400_on_every_list(admin_client_api, customer, url):
    response = admin_client_api.get(url.format(customer=customer.pk), {"emial": "maria@example.com"})
    assert_validation_error(response, "non_field_errors")
    assert response.json()["errors"][0]["code"] == "unknown_parameter"
    assert "emial" in response.json()["errors"][0]["detail"]


def test_known_parameters_still_work_together(admin_client_api, customer):
    response = admin_client_api.get(
        "/api/v1/customers/", {"search": customer.email, "ordering": "id", "page_size": 5, "vip": "false"}
    )
    assert ids(response) == [customer.pk]


def test_the_schema_documents_the_email_filter_and_the_new_errors(admin_client_api):
    document = admin_client_api.get("/api/schema/", {"format": "json"}).json()
    operation = document["paths"]["/api/v1/customers/"]["get"]
    assert "email" in [parameter["name"] for parameter in operation["parameters"]]
    errors = str(document["components"]["schemas"])
    assert "unknown_parameter" in errors
