"""The groups of config/roles.py see and do through the API exactly what the admin allows them."""

import pytest

from integrations.models import RunStatus
from tests.automations.factories import AutomationRuleFactory
from tests.integrations.factories import WorkflowRunFactory
from tests.support.factories import TicketFactory

pytestmark = pytest.mark.django_db

READS = {
    "/api/v1/customers/": {"Support", "Marketing", "Service"},
    "/api/v1/subscriptions/": {"Support", "Service"},
    "/api/v1/automation-rules/": {"Marketing", "Service"},
    "/api/v1/email-queue-items/": {"Support", "Marketing", "Service"},
    "/api/v1/analytics/email/": {"Marketing", "Service"},
    "/api/v1/tickets/": {"Support", "Service"},
    "/api/v1/workflow-runs/": {"Support", "Marketing", "Service"},
    "/api/v1/segments/": {"Marketing", "Service"},
}


@pytest.fixture
def clients(support_client, marketing_client, key_client):
    return {"Support": support_client, "Marketing": marketing_client, "Service": key_client}


def test_reads_follow_view_permissions(clients):
    for url, allowed in READS.items():
        for role, client in clients.items():
            expected = 200 if role in allowed else 403
            assert client.get(url).status_code == expected, (url, role)


def test_nested_reads_follow_the_nested_model(clients, customer):
    assert clients["Support"].get(f"/api/v1/customers/{customer.pk}/timeline/").status_code == 200
    assert clients["Support"].get(f"/api/v1/customers/{customer.pk}/enrollments/").status_code == 403
    assert clients["Marketing"].get(f"/api/v1/customers/{customer.pk}/enrollments/").status_code == 200


def test_actions_follow_change_permissions(clients, customer):
    rule = AutomationRuleFactory(name="Test rule", trigger="payment.failed")
    # Support may not touch rules; the service account may read them but not switch them.
    assert clients["Support"].post(f"/api/v1/automation-rules/{rule.pk}/disable/").status_code == 403
    assert clients["Service"].post(f"/api/v1/automation-rules/{rule.pk}/disable/").status_code == 403
    assert clients["Marketing"].post(f"/api/v1/automation-rules/{rule.pk}/disable/").status_code == 200
    assert clients["Marketing"].post(f"/api/v1/automation-rules/{rule.pk}/enable/").status_code == 200
    # Retrying and cancelling emails need change_emailqueueitem, as in the admin: Marketing has it (a missing email is
    # then a 404), Support and the service account do not.
    assert clients["Marketing"].post("/api/v1/email-queue-items/999999/retry/").status_code == 404
    assert clients["Support"].post("/api/v1/email-queue-items/999999/retry/").status_code == 403
    assert clients["Service"].post("/api/v1/email-queue-items/999999/cancel/").status_code == 403
    # Enrolling needs add_enrollment: the service account and Marketing have it, Support does not.
    url = f"/api/v1/automation-rules/{rule.pk}/enrollments/"
    assert clients["Support"].post(url, {"customer": customer.pk}, format="json").status_code == 403
    response = clients["Marketing"].post(url, {"customer": customer.pk}, format="json")
    assert response.status_code == 201, response.json()


def test_details_follow_the_same_permissions(clients):
    ticket = TicketFactory(discord_user_id="1", subject="Lag")
    run = WorkflowRunFactory(kind="contact_invite", key="k", subject="mautic-contact:1")
    for role, client in clients.items():
        assert client.get(f"/api/v1/tickets/{ticket.pk}/").status_code == (403 if role == "Marketing" else 200), role
        assert client.get(f"/api/v1/workflow-runs/{run.pk}/").status_code == 200, role


def test_no_role_may_retry_a_workflow_run(clients):
    # Retrying needs integrations.change_workflowrun, as the admin's retry action: superusers, or a group given it.
    run = WorkflowRunFactory(kind="contact_invite", key="k", subject="mautic-contact:1", status=RunStatus.FAILED)
    for role, client in clients.items():
        assert client.post(f"/api/v1/workflow-runs/{run.pk}/retry/").status_code == 403, role
    run.refresh_from_db()
    assert run.next_attempt_at is None


def test_no_group_no_access(db):
    from tests.api.conftest import session_client
    from tests.customers.factories import StaffUserFactory

    client = session_client(StaffUserFactory())
    for url in READS:
        assert client.get(url).status_code == 403


def test_a_keys_permissions_are_djangos_own_and_current_on_every_request(key_client, service_account):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.backends import ModelBackend
    from django.contrib.auth.models import Permission

    from api.authentication import permissions_load

    # The account's own permission as well as its group's.
    service_account.user_permissions.add(Permission.objects.get(codename="delete_ticket"))
    loaded = get_user_model().objects.get(pk=service_account.pk)
    permissions_load(loaded)
    expected = ModelBackend().get_all_permissions(get_user_model().objects.get(pk=service_account.pk))
    assert loaded._perm_cache == expected and "support.delete_ticket" in expected

    assert key_client.get("/api/v1/tickets/").status_code == 200
    group = service_account.groups.get()
    group.permissions.remove(Permission.objects.get(codename="view_ticket"))
    assert key_client.get("/api/v1/tickets/").status_code == 403  # no permission outlives its request
