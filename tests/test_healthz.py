from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule

from automations.models import AutomationRule, EmailQueueItem, Enrollment, QueueStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedules():
    Schedule.objects.create(
        name="modready:test", func="customers.tasks.domain_events_dispatch_pending", next_run=timezone.now()
    )


def test_healthy_without_login(schedules):
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["queue"]["oldest_due_email_age_seconds"] == 0


def test_a_silent_scheduler_is_unhealthy(schedules, settings):
    Schedule.objects.update(next_run=timezone.now() - timedelta(seconds=settings.HEALTHZ_SCHEDULER_MAX_LAG + 60))
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["scheduler"]["ok"] is False


def test_no_schedules_installed_is_unhealthy():
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert "install_schedules" in response.json()["checks"]["scheduler"]["error"]


def test_a_stuck_email_queue_is_unhealthy(schedules, settings, customer):
    rule = AutomationRule.objects.create(name="t", trigger="payment.failed")
    from automations.models import AutomationStep, EmailTemplate

    template = EmailTemplate.objects.create(name="t", subject="s", html_body="h", text_body="t")
    step = AutomationStep.objects.create(rule=rule, order=1, template=template)
    enrollment = Enrollment.objects.create(rule=rule, customer=customer, scope_key="t", enrolled_at=timezone.now())
    due = timezone.now() - timedelta(seconds=settings.HEALTHZ_QUEUE_MAX_AGE + 60)
    EmailQueueItem.objects.create(
        enrollment=enrollment,
        step=step,
        customer=customer,
        recipient=customer.email,
        scheduled_at=due,
        next_attempt_at=due,
        status=QueueStatus.PENDING,
        idempotency_key="email:stuck",
    )
    response = Client().get("/healthz")
    assert response.status_code == 503
    queue = response.json()["checks"]["queue"]
    assert queue["ok"] is False and queue["oldest_due_email_age_seconds"] >= settings.HEALTHZ_QUEUE_MAX_AGE


def test_an_integration_alert_degrades_the_status_until_it_clears_without_taking_the_site_out(schedules):
    from integrations import alerts

    alerts.discord_message_content_missing(detail="ticket #1: 2 of 2 empty")  # as a held ticket close records it
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "degraded"
    check = response.json()["checks"]["integrations"]
    assert check["ok"] is False and [a["kind"] for a in check["alerts"]] == ["discord_message_content_missing"]
    assert "ticket" not in response.content.decode()  # monitors get the kind, not the detail

    alerts.discord_message_content_seen()
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json()["checks"]["integrations"] == {"ok": True, "alerts": []}


def test_requests_through_an_unconfigured_proxy_are_reported_without_failing_the_check(schedules, monkeypatch):
    monkeypatch.setattr("core.client_address._last_recorded", 0.0)
    assert "client_address" not in Client().get("/healthz").json()["checks"]

    # The proxy's requests reach the login page; the monitor asks directly, without the header.
    Client().get("/admin/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.5")
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert "TRUSTED_PROXY_COUNT is 0" in response.json()["checks"]["client_address"]["warning"]
    through_proxy = Client().get("/healthz", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.5").json()
    assert "TRUSTED_PROXY_COUNT is 0" in through_proxy["checks"]["client_address"]["warning"]


def test_a_configured_proxy_is_not_reported(schedules, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    response = Client().get("/healthz", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert "client_address" not in response.json()["checks"]
