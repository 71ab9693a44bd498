"""Authentication on every endpoint but /healthz, API keys for service accounts, the schema and docs."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from api.models import ServiceAccountKey

pytestmark = pytest.mark.django_db

# Open by design: monitors, the admin's own login, unsubscribe links, the providers' signed webhook receivers
# (Resend via anymail, Stripe, Mautic, Discord interactions), whose forged-signature tests live with their apps, and
# the pages reached by a signed link from an email: a new staff member's password (Django's password-reset token,
# tests/config/test_staff_accounts.py), a customer's Discord confirmation (tests/support/test_discord_identity.py) and
# a customer's card-update link (tests/billing/test_card_update.py).
PUBLIC_PREFIXES = (
    "healthz",
    "admin/",
    "email/unsubscribe",
    "anymail/",
    "api/webhooks/stripe",
    "api/webhooks/mautic",
    "api/discord/interactions",
    "static/",
    "staff/password/",
    "support/discord-link/",
    "billing/card-update",
    "billing/cancel/",
)


def _walk(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route


def _concrete(route: str) -> str:
    route = re.sub(r"\(\?P<\w+>[^)]*\)", "1", route)  # regex groups of routers
    route = re.sub(r"<(?:\w+:)?\w+>", "1", route)  # path converters
    route = route.replace("^", "").replace("$", "").replace("\\.", ".")
    return "/" + route


def api_routes() -> list[str]:
    routes = {_concrete(route) for route in _walk(get_resolver().url_patterns)}
    routes = {route for route in routes if not route.lstrip("/").startswith(PUBLIC_PREFIXES)}
    # Router format-suffix variants (".json") are the same views.
    return sorted(route for route in routes if "1." not in route and "format" not in route)


def test_the_walk_finds_every_api_endpoint():
    routes = api_routes()
    assert "/api/v1/customers/" in routes
    assert "/api/v1/email-queue-items/1/retry/" in routes
    assert "/api/v1/tickets/1/" in routes and "/api/v1/workflow-runs/1/retry/" in routes
    assert "/api/schema/" in routes and "/api/docs/" in routes
    assert all(route.startswith("/api/") for route in routes), routes


def test_anonymous_is_refused_everywhere():
    client = APIClient()
    answered = {
        (route, method): getattr(client, method)(route).status_code
        for route in api_routes()
        for method in ("get", "post", "put", "patch", "delete")
    }
    assert {key: status for key, status in answered.items() if status != 401} == {}


def test_a_wrong_api_key_is_refused_everywhere():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Api-Key nope.wrong")
    answered = {route: client.get(route).status_code for route in api_routes()}
    assert {route: status for route, status in answered.items() if status != 401} == {}


def test_api_key_authenticates_and_records_last_use(key_client, api_key, customer):
    response = key_client.get("/api/v1/customers/")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [customer.pk]
    key_row = ServiceAccountKey.objects.get(pk=api_key[0].pk)
    assert key_row.last_used_at is not None
    assert api_key[1] not in key_row.hashed_key  # only the hash is stored


def test_revoked_key_is_refused(key_client, api_key):
    ServiceAccountKey.objects.filter(pk=api_key[0].pk).update(revoked=True)
    response = key_client.get("/api/v1/customers/")
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "client_error"
    assert body["errors"][0]["code"] == "authentication_failed"


def test_inactive_service_account_is_refused(key_client, service_account):
    service_account.is_active = False
    service_account.save()
    assert key_client.get("/api/v1/customers/").status_code == 401


def test_errors_have_one_shape(admin_client_api):
    response = admin_client_api.get("/api/v1/customers/999999/")
    assert response.status_code == 404
    assert response.json() == {
        "type": "client_error",
        "errors": [{"code": "not_found", "detail": "Not found.", "attr": None}],
    }
    response = admin_client_api.get("/api/v1/customers/", {"created_since": "yesterday"})
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert response.json()["errors"][0]["attr"] == "created_since"


def test_schema_and_docs_for_authenticated_users_only(admin_client_api):
    assert APIClient().get("/api/schema/").status_code == 401
    assert APIClient().get("/api/docs/").status_code == 401
    schema = admin_client_api.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    document = schema.json()
    assert "/api/v1/customers/" in document["paths"]
    docs = admin_client_api.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower()


def test_throttling_per_key(settings, key_client, admin_client_api):
    from api.throttling import PrincipalRateThrottle

    PrincipalRateThrottle.THROTTLE_RATES = {"principal": "3/min"}
    try:
        statuses = [key_client.get("/api/v1/customers/").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        # Another principal has its own budget.
        assert admin_client_api.get("/api/v1/customers/").status_code == 200
    finally:
        PrincipalRateThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
