import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from api.models import ServiceAccountKey
from config.roles import SERVICE_ACCOUNTS
from tests.customers.factories import StaffUserFactory


@pytest.fixture(autouse=True)
def fresh_throttle_budget(request):
    # The rate limit's counts live in the shared cache, a database table: reached only by tests that use the database
    # (set up here if a later fixture asks for it).
    if "transactional_db" in request.fixturenames:
        request.getfixturevalue("transactional_db")
    elif "db" in request.fixturenames or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("db")
    else:
        return
    cache.clear()


@pytest.fixture
def service_account(db):
    user = get_user_model().objects.create_user(username="provisioning-panel")
    user.groups.add(Group.objects.get(name=SERVICE_ACCOUNTS))
    return user


@pytest.fixture
def api_key(service_account):
    key_row, key = ServiceAccountKey.objects.create_key(name="panel", user=service_account)
    return key_row, key


@pytest.fixture
def key_client(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key[1]}")
    return client


def session_client(user):
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client_api(db):
    return session_client(StaffUserFactory(is_superuser=True))


@pytest.fixture
def support_client(support_user):
    return session_client(support_user)


@pytest.fixture
def marketing_client(marketing_user):
    return session_client(marketing_user)


def ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def query_counts(client, url, sizes):
    """Queries per request for each page size (after a first request, which also stamps the key's last use).

    The rate limit's reads and writes of the shared cache (its own table, 4 queries with the database cache, none
    with Redis: test_throttling_shared.py) are left out: they are the same for every request."""
    client.get(url)
    counts = []
    for size in sizes:
        with CaptureQueriesContext(connection) as captured:
            assert len(ids(client.get(url, {"page_size": size}))) == size
        counts.append(len(without_shared_cache_queries([query["sql"] for query in captured])))
    return counts


def without_shared_cache_queries(statements: list[str]) -> list[str]:
    """The statements minus those on the shared cache's table and the savepoint each cache write opens (inside the
    test's transaction; in production a cache write is its own short transaction)."""
    kept, cache_savepoints = [], set()
    for n, sql in enumerate(statements):
        if settings.CACHE_TABLE in sql:
            continue
        if sql.startswith("SAVEPOINT") and n + 1 < len(statements) and settings.CACHE_TABLE in statements[n + 1]:
            cache_savepoints.add(sql.split()[-1])
            continue
        if sql.startswith("RELEASE SAVEPOINT") and sql.split()[-1] in cache_savepoints:
            continue
        kept.append(sql)
    return kept
