from datetime import timedelta

import pytest
from django.utils import timezone

from automations import selectors
from automations.models import AutomationRule, Enrollment, EnrollmentStatus, QueueStatus
from tests.automations.factories import EnrollmentFactory, QueuedEmailFactory
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rule(db):
    # The default flows come from automations' data migration (tests/automations/conftest.py puts them back).
    from importlib import import_module

    from django.apps import apps

    import_module("automations.migrations.0002_default_flows").create_defaults(apps, None)
    return AutomationRule.objects.get(name="Win-back")


def enroll(client, rule, customer, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(
        f"/api/v1/automation-rules/{rule.pk}/enrollments/", {"customer": customer.pk}, format="json", **headers
    )


def test_rules_list_and_detail(marketing_client, rule):
    rows = marketing_client.get("/api/v1/automation-rules/").json()
    assert rule.name in [row["name"] for row in rows]
    detail = marketing_client.get(f"/api/v1/automation-rules/{rule.pk}/").json()
    assert [step["order"] for step in detail["steps"]] == sorted(s.order for s in rule.steps.all())
    assert detail["steps"][0]["template"] == rule.steps.order_by("order").first().template.name


def test_marketing_disables_and_enables_a_rule(marketing_client, rule):
    response = marketing_client.post(f"/api/v1/automation-rules/{rule.pk}/disable/")
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert AutomationRule.objects.get(pk=rule.pk).enabled is False
    assert marketing_client.post(f"/api/v1/automation-rules/{rule.pk}/enable/").json()["enabled"] is True
    assert marketing_client.post("/api/v1/automation-rules/999999/enable/").status_code == 404


def test_service_account_enrolls_a_customer_by_hand(key_client, rule, run_on_commit):
    customer = CustomerFactory()
    with run_on_commit():
        response = enroll(key_client, rule, customer)
    assert response.status_code == 201, response.content
    enrollment = Enrollment.objects.get(pk=response.json()["id"])
    assert (enrollment.rule, enrollment.customer, enrollment.status) == (rule, customer, EnrollmentStatus.ACTIVE)
    assert enrollment.queue_items.count() == rule.steps.count()
    listed = key_client.get(f"/api/v1/customers/{customer.pk}/enrollments/").json()["results"]
    assert [row["id"] for row in listed] == [enrollment.pk]


def test_enrolling_twice_without_a_key_is_refused_by_the_policy(key_client, rule):
    customer = CustomerFactory()
    assert enroll(key_client, rule, customer).status_code == 201
    second = enroll(key_client, rule, customer)
    assert second.status_code == 409
    assert second.json()["errors"][0]["code"] == "conflict"
    assert Enrollment.objects.filter(customer=customer).count() == 1


def test_enrolling_in_a_disabled_rule_is_refused(key_client, rule):
    AutomationRule.objects.filter(pk=rule.pk).update(enabled=False)
    assert enroll(key_client, rule, CustomerFactory()).status_code == 409


def test_idempotent_retry_replays_the_first_response(key_client, rule):
    customer = CustomerFactory()
    first = enroll(key_client, rule, customer, key="panel-enroll-1")
    again = enroll(key_client, rule, customer, key="panel-enroll-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Enrollment.objects.filter(customer=customer).count() == 1
    # The same key for a different request is refused and does nothing.
    other = enroll(key_client, rule, CustomerFactory(), key="panel-enroll-1")
    assert other.status_code == 422
    assert other.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert Enrollment.objects.count() == 1


def test_idempotency_keys_are_per_principal(key_client, admin_client_api, rule):
    a, b = CustomerFactory(), CustomerFactory()
    assert enroll(key_client, rule, a, key="k1").status_code == 201
    # Another principal's identical key is its own.
    assert enroll(admin_client_api, rule, b, key="k1").status_code == 201


def test_a_failed_request_stores_nothing_under_its_key(key_client, rule):
    customer = CustomerFactory()
    assert enroll(key_client, rule, customer, key="k2").status_code == 201
    failed = key_client.post(
        f"/api/v1/automation-rules/{rule.pk}/enrollments/",
        {"customer": "not a number"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k3",
    )
    assert failed.status_code == 400
    assert failed.json()["type"] == "validation_error"
    fixed = enroll(key_client, rule, CustomerFactory(), key="k3")
    assert fixed.status_code == 201


def make_item(rule, status, **fields):
    customer = CustomerFactory()
    enrollment = EnrollmentFactory(rule=rule, customer=customer, scope_key="t", enrolled_at=timezone.now())
    now = timezone.now()
    return QueuedEmailFactory(
        enrollment=enrollment,
        step=rule.steps.order_by("order").first(),
        customer=customer,
        recipient=customer.email,
        scheduled_at=now,
        next_attempt_at=now + timedelta(hours=1),
        status=status,
        idempotency_key=f"email:test-{customer.pk}",
        **fields,
    )


@pytest.fixture
def queue_admin(db):
    from django.contrib.auth.models import Permission

    from tests.api.conftest import session_client
    from tests.customers.factories import StaffUserFactory

    user = StaffUserFactory()
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_emailqueueitem", "change_emailqueueitem"]))
    return session_client(user)


def test_queue_items_filtered(queue_admin, rule):
    failed = make_item(rule, QueueStatus.FAILED, last_error="Resend 422")
    pending = make_item(rule, QueueStatus.PENDING)
    url = "/api/v1/email-queue-items/"
    assert [row["id"] for row in queue_admin.get(url, {"status": "failed"}).json()["results"]] == [failed.pk]
    assert [row["id"] for row in queue_admin.get(url, {"customer": pending.customer_id}).json()["results"]] == [
        pending.pk
    ]
    by_rule = queue_admin.get(url, {"rule": rule.pk}).json()["results"]
    assert {row["id"] for row in by_rule} == {failed.pk, pending.pk}
    assert by_rule[0]["rule_name"] == rule.name


def test_retry_a_failed_email_and_cancel_a_pending_one(queue_admin, rule):
    failed = make_item(rule, QueueStatus.FAILED, last_error="Resend 422", attempts=6)
    pending = make_item(rule, QueueStatus.PENDING)
    retried = queue_admin.post(f"/api/v1/email-queue-items/{failed.pk}/retry/")
    assert retried.status_code == 200
    assert retried.json()["status"] == "pending" and retried.json()["attempts"] == 0
    cancelled = queue_admin.post(f"/api/v1/email-queue-items/{pending.pk}/cancel/")
    assert cancelled.json()["status"] == "cancelled"
    # A pending email cannot be "retried", a cancelled one cannot be cancelled again.
    assert queue_admin.post(f"/api/v1/email-queue-items/{failed.pk}/retry/").status_code == 409
    assert queue_admin.post(f"/api/v1/email-queue-items/{pending.pk}/cancel/").status_code == 409


def test_analytics_match_the_admin_selector(marketing_client, rule):
    sent_at = timezone.now() - timedelta(days=1)
    for opened in (True, False, True):
        make_item(
            rule,
            QueueStatus.SENT,
            sent_at=sent_at,
            delivered_at=sent_at,
            opened_at=sent_at if opened else None,
        )
    day = sent_at.date()
    body = marketing_client.get("/api/v1/analytics/email/", {"since": str(day), "until": str(day)}).json()
    assert body["total"]["sent"] == 3 and body["total"]["opened"] == 2
    assert body["total"]["open_rate"] == pytest.approx(2 / 3)
    [rule_row] = body["rules"]
    assert (rule_row["rule"], rule_row["rule_name"], rule_row["stats"]["sent"]) == (rule.pk, rule.name, 3)
    assert body["days"] == [{"day": str(day), "sends": 3, "unique_opens": 2, "unique_clicks": 0}]
    from datetime import UTC, datetime, time

    selected = selectors.email_analytics(
        since=datetime.combine(day, time.min, tzinfo=UTC),
        until=datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC),
    )
    assert body["total"]["clicked"] == selected.total.clicked and body["total"]["sent"] == selected.total.sent
    bad = marketing_client.get("/api/v1/analytics/email/", {"since": "2026-13-01"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["attr"] == "since"
    backwards = marketing_client.get("/api/v1/analytics/email/", {"since": "2026-02-01", "until": "2026-01-01"})
    assert backwards.status_code == 200 and backwards.json()["days"] == []
    long = marketing_client.get("/api/v1/analytics/email/", {"since": "2000-01-01", "until": "2026-01-01"}).json()
    assert (long["since"], len(long["days"])) == ("2025-01-01", 366)
