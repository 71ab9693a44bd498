"""Shared test setup.

- The network guard is pytest-socket (`--allow-hosts` in pyproject.toml): any connection to an address other than
  127.0.0.1/::1 fails the test, so no test can reach the internet or a real provider.
- Fakes of outside systems run on 127.0.0.1 through tests/fakes (see tests/fakes/server.py).
"""

import pytest
from django.contrib.auth.models import Group

from tests.customers.factories import CustomerFactory, StaffUserFactory


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
