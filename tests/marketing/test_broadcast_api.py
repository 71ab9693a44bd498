"""Broadcasts over the REST API (/api/v1/broadcasts/): create (with Idempotency-Key), the detail with its figures, and
the actions schedule, send, pause, resume and cancel, refused with a 409 when the status does not allow them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from marketing.broadcast_models import Broadcast, BroadcastStatus
from tests.api.conftest import fresh_throttle_budget, marketing_client  # noqa: F401

from .conftest import customers_with_consent

pytestmark = pytest.mark.django_db


def problem(response) -> str:
    return response.json()["errors"][0]["detail"]


@pytest.fixture
def body(topic, template, everyone):
    return {
        "name": "Winter sale",
        "topic": topic.slug,
        "segment": everyone.pk,
        "template": template.pk,
        "subject_variants": ["Winter is here"],
    }


def test_create_is_idempotent_and_the_detail_has_the_figures(marketing_client, marketing_user, body):  # noqa: F811
    headers = {"Idempotency-Key": "create-winter-sale"}
    first = marketing_client.post("/api/v1/broadcasts/", body, format="json", headers=headers)
    assert first.status_code == 201, first.json()
    again = marketing_client.post("/api/v1/broadcasts/", body, format="json", headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and Broadcast.objects.count() == 1
    created = first.json()
    assert created["status"] == "draft" and [v["label"] for v in created["variants"]] == ["A", "B"]
    assert created["variants"][1]["subject"] == "Winter is here"
    assert created["figures"]["totals"]["recipients"] == 0
    assert Broadcast.objects.get().created_by == marketing_user

    duplicate = marketing_client.post("/api/v1/broadcasts/", body, format="json")
    assert duplicate.status_code == 400 and "exists already" in str(duplicate.json())


def test_schedule_send_pause_resume_cancel(marketing_client, body, no_drain_wakeups, run_on_commit):  # noqa: F811
    customers_with_consent(3)
    broadcast_id = marketing_client.post("/api/v1/broadcasts/", body, format="json").json()["id"]
    url = f"/api/v1/broadcasts/{broadcast_id}"

    past = marketing_client.post(f"{url}/schedule/", {"at": timezone.now() - timedelta(hours=1)}, format="json")
    assert past.status_code == 409 and "future" in problem(past)
    at = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    scheduled = marketing_client.post(f"{url}/schedule/", {"at": at.isoformat()}, format="json")
    assert scheduled.status_code == 200 and scheduled.json()["status"] == "scheduled"

    with run_on_commit():
        sent = marketing_client.post(f"{url}/send/", headers={"Idempotency-Key": "send-1"})
    assert sent.status_code == 200
    again = marketing_client.post(f"{url}/send/", headers={"Idempotency-Key": "send-1"})
    assert again.headers["Idempotent-Replayed"] == "true"  # the retry is answered, nothing is sent twice
    twice = marketing_client.post(f"{url}/send/")
    assert twice.status_code == 409 and "cannot be sent" in problem(twice)
    detail = marketing_client.get(f"{url}/").json()
    assert detail["status"] == "sending" and detail["queued_count"] == 3
    assert detail["figures"]["totals"]["queued"] == 3 and detail["figures"]["variants"][0]["recipients"] == 3

    paused = marketing_client.post(f"{url}/pause/", {"reason": "wrong link"}, format="json")
    assert paused.status_code == 200 and paused.json()["figures"]["totals"]["held"] == 3
    with run_on_commit():
        assert marketing_client.post(f"{url}/resume/").json()["status"] == "queuing"
    assert marketing_client.get(f"{url}/").json()["status"] == "sending"  # the queuing finished on commit
    cancelled = marketing_client.post(f"{url}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["figures"]["totals"]["skipped"] == 3
    assert marketing_client.post(f"{url}/resume/").status_code == 409
    assert Broadcast.objects.get().status == BroadcastStatus.CANCELLED


def test_support_may_not_see_or_send_broadcasts(support_client_api, make_broadcast):
    broadcast = make_broadcast()
    assert support_client_api.get("/api/v1/broadcasts/").status_code == 403
    assert support_client_api.post(f"/api/v1/broadcasts/{broadcast.pk}/send/").status_code == 403
    assert Broadcast.objects.get().status == BroadcastStatus.DRAFT


@pytest.fixture
def support_client_api(support_user):
    from tests.api.conftest import session_client

    return session_client(support_user)
