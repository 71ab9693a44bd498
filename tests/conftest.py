"""Shared test setup.

- The network guard is pytest-socket (`--allow-hosts` in pyproject.toml): any connection to an address other than
  127.0.0.1/::1 fails the test, so no test can reach the internet or a real provider.
- Fakes of outside systems run on 127.0.0.1 through devtools/fakes (see devtools/fakes/server.py).
"""

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from tests.customers.factories import CustomerFactory, StaffUserFactory


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database is dropped at the end even if a thread of some test (a live server, a worker thread, a fake's
    callback) still holds a connection to it: those sessions are ended first, so no run leaves test_* behind."""
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        connection.close()


@pytest.fixture
def customer(db):
    return CustomerFactory()


@pytest.fixture
def support_user(db):
    user = StaffUserFactory()
    user.groups.add(Group.objects.get(name="Support"))
    return user


@pytest.fixture
def marketing_user(db):
    user = StaffUserFactory()
    user.groups.add(Group.objects.get(name="Marketing"))
    return user


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run the on_commit callbacks (task enqueues, emails) of the block, as a real commit would."""

    def runner():
        return django_capture_on_commit_callbacks(execute=True)

    return runner


def pytest_collection_modifyitems(config, items):
    """No serialized rollback: it restores the database as it was at creation, which collides with the staff groups a
    plain transactional test's flush puts back (post_migrate), depending on which tests a worker ran before. Tests put
    back what they need with fixtures instead (tests/automations/conftest.py::default_flows)."""
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is not None and marker.kwargs.get("serialized_rollback"):
            raise pytest.UsageError(f"{item.nodeid}: serialized_rollback=True is not used here (tests/conftest.py)")
