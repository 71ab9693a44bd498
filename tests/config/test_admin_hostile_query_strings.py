"""Every admin list and custom admin page, opened with hostile query strings: never a 500; an unusable filter gives a
message and the unfiltered page."""

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse

import config.urls  # noqa: F401  (registers every ModelAdmin)
from config.admin_query_guard import UNUSABLE_FILTERS
from tests.customers.factories import CustomerFactory, StaffUserFactory

pytestmark = pytest.mark.django_db

CUSTOM_PAGES = [
    "admin:index",
    "admin:customers_customer_funnel",
    "admin:automations_analytics",
    "admin:support_ticket_metrics",
]


def admin_pages() -> list[tuple[str, object]]:
    pages = [(name, None) for name in CUSTOM_PAGES]
    for model, model_admin in admin.site._registry.items():
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"
        try:
            reverse(name)
        except NoReverseMatch:
            continue
        pages.append((name, model_admin))
    return pages


def hostile_queries(model_admin) -> list[dict[str, str]]:
    queries = [
        {"q": "\x00"},
        {"days": "²"},
        {"days": "\x00"},
        {"since": "9999-12-31", "until": "9999-12-31"},
        {"since": "²", "until": "0000-01-01"},
        {"rule": "99999999999999999999999"},
        {"customer": "\x00"},
    ]
    if model_admin is not None:
        for entry in model_admin.list_filter:
            if isinstance(entry, str):
                queries.append({f"{entry}__exact": "\x00"})
                queries.append({f"{entry}__exact": "99999999999999999999999"})
        if model_admin.date_hierarchy:
            field = model_admin.date_hierarchy
            queries.append({f"{field}__year": "9999", f"{field}__month": "12", f"{field}__day": "31"})
            queries.append({f"{field}__year": "99999"})
            queries.append({f"{field}__gte": "9999-12-31 23:59:59"})
    return queries


@pytest.fixture
def owner_client(client):
    client.force_login(StaffUserFactory(is_superuser=True))
    return client


def page_id(value) -> str:
    return value if isinstance(value, str) else ""


@pytest.mark.parametrize(("name", "model_admin"), admin_pages(), ids=page_id)
def test_hostile_query_strings_never_give_a_500(owner_client, name, model_admin):
    CustomerFactory()
    url = reverse(name)
    answered = {}
    for query in hostile_queries(model_admin):
        response = owner_client.get(url, query, follow=True)
        answered[str(query)] = response.status_code
        if response.redirect_chain and response.status_code == 200:
            page = response.content.decode()
            # A redirect to the unfiltered page says why.
            assert response.redirect_chain[-1][0].split("?")[0] in (url, "") and UNUSABLE_FILTERS in page, query
    assert {query: status for query, status in answered.items() if status != 200} == {}


def test_the_funnel_with_a_non_ascii_digit_shows_the_default_period(owner_client):
    response = owner_client.get(reverse("admin:customers_customer_funnel"), {"days": "²"})
    assert response.status_code == 200
    assert "Customer funnel" in response.content.decode()


def test_a_nul_byte_in_a_list_filter_shows_a_message_and_everything(owner_client):
    maria = CustomerFactory(email="maria@example.com")
    url = reverse("admin:customers_customer_changelist")
    response = owner_client.get(url, {"lifecycle_stage__exact": "\x00"}, follow=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == url
    assert UNUSABLE_FILTERS in page
    assert "maria@example.com" in page
    assert maria.pk
