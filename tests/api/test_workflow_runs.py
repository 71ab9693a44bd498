"""/api/v1/workflow-runs/: the integrations' workflow runs, filtered, with their steps, and retrying a failed one."""

from datetime import timedelta
from itertools import count

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from integrations import runs
from integrations.models import RunKind, RunStatus, WorkflowRun
from tests.api.conftest import ids, query_counts, session_client
from tests.customers.factories import CustomerFactory, StaffUserFactory
from tests.integrations.factories import WorkflowRunFactory, WorkflowStepFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/workflow-runs/"
_keys = count(1)


def run(**fields) -> WorkflowRun:
    n = next(_keys)
    fields.setdefault("kind", RunKind.CONTACT_INVITE)
    fields.setdefault("subject", f"mautic-contact:{n}")
    return WorkflowRunFactory(key=f"test:{n}", **fields)


def step(run_, name, outcome="ok", *, minutes=0, **fields):
    at = timezone.now() + timedelta(minutes=minutes)
    return WorkflowStepFactory(run=run_, name=name, outcome=outcome, started_at=at, finished_at=at, **fields)


@pytest.fixture
def runs_admin(db):
    """Staff who may view and retry runs (integrations.change_workflowrun, as the admin's retry action asks)."""
    user = StaffUserFactory()
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_workflowrun", "change_workflowrun"]))
    return session_client(user)


def test_list_newest_first_and_filtered(key_client):
    customer = CustomerFactory()
    old = run(status=RunStatus.SUCCEEDED, customer=customer, subject="mautic-contact:42")
    WorkflowRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    failed = run(status=RunStatus.FAILED, last_error="MauticError: 503", customer=customer)
    coupon = run(kind=RunKind.VIP_COUPON, status=RunStatus.PENDING, subject="cs_test_1")

    assert ids(key_client.get(URL)) == [coupon.pk, failed.pk, old.pk]
    assert ids(key_client.get(URL, {"kind": "vip_coupon"})) == [coupon.pk]
    assert ids(key_client.get(URL, {"status": ["failed", "gave_up"]})) == [failed.pk]
    assert ids(key_client.get(URL, {"customer": customer.pk})) == [failed.pk, old.pk]
    assert ids(key_client.get(URL, {"subject": "mautic-contact:42"})) == [old.pk]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(key_client.get(URL, {"since": since})) == [coupon.pk, failed.pk]
    row = key_client.get(URL, {"status": "failed"}).json()["results"][0]
    assert (row["customer_email"], row["last_error"]) == (customer.email, "MauticError: 503")
    assert "steps" not in row and "input" not in row
    assert key_client.get(URL, {"kind": "zapier"}).status_code == 400
    assert key_client.get(URL, {"since": ""}).status_code == 400


def test_detail_has_the_steps_in_order(key_client):
    r = run(status=RunStatus.FAILED, input={"contact_id": "42"})
    step(r, "mautic.read", minutes=0)
    step(r, "discord.invite", "failed", minutes=1, error="DiscordError: 30001 maximum invites", attempts=2)
    body = key_client.get(f"{URL}{r.pk}/").json()
    assert body["input"] == {"contact_id": "42"} and body["key"] == r.key
    assert [(s["name"], s["outcome"], s["attempts"]) for s in body["steps"]] == [
        ("mautic.read", "ok", 1),
        ("discord.invite", "failed", 2),
    ]
    assert body["steps"][1]["error"] == "DiscordError: 30001 maximum invites"


def test_retry_runs_a_failed_run_again_through_the_admin_service(runs_admin, run_on_commit, monkeypatch):
    executed = []

    def workflow(recorder):
        executed.append(recorder.run.pk)
        return "invite sent"

    # The registered workflow would call Mautic; the retry path up to it is what is under test.
    monkeypatch.setitem(runs._workflows, RunKind.CONTACT_INVITE, workflow)
    gave_up = run(status=RunStatus.GAVE_UP, attempts=5, last_error="MauticError: 503")
    with run_on_commit():
        response = runs_admin.post(f"{URL}{gave_up.pk}/retry/")
    assert response.status_code == 200, response.json()
    # The answer is the run as queued: due now, to be run by the task.
    assert response.json()["status"] == "failed" and response.json()["next_attempt_at"] is not None
    gave_up.refresh_from_db()
    assert executed == [gave_up.pk]
    assert (gave_up.status, gave_up.outcome, gave_up.attempts) == (RunStatus.SUCCEEDED, "invite sent", 6)
    # A run that is not failed is not retried.
    conflict = runs_admin.post(f"{URL}{gave_up.pk}/retry/")
    assert conflict.status_code == 409
    assert conflict.json()["errors"][0]["code"] == "conflict"
    assert runs_admin.post(f"{URL}999999/retry/").status_code == 404


def test_a_retried_retry_with_its_key_acts_once(runs_admin, django_capture_on_commit_callbacks):
    failed = run(status=RunStatus.FAILED)
    with django_capture_on_commit_callbacks() as enqueued:
        first = runs_admin.post(f"{URL}{failed.pk}/retry/", HTTP_IDEMPOTENCY_KEY="retry-1")
        again = runs_admin.post(f"{URL}{failed.pk}/retry/", HTTP_IDEMPOTENCY_KEY="retry-1")
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert len(enqueued) == 1  # one task for the run, not two


def test_list_query_count_does_not_grow_with_page_size(key_client):
    for _ in range(50):
        run(customer=CustomerFactory())
    # key + service account, the account's permissions (one query), the page with its customers
    assert query_counts(key_client, URL, (5, 50)) == [3, 3]
