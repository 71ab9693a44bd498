"""The provider-neutral webhook store, workflow runs and their admin, and the start-up configuration check."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from django.utils import timezone

from core import configuration
from integrations.models import DeliveryStatus, InboundWebhook, RunStatus, WorkflowRun
from integrations.runs import RunSkipped, run_execute, workflow, workflow_run_create, workflow_runs_due
from integrations.tasks import workflow_runs_retry_task
from integrations.webhooks import store as webhooks
from tests.customers.factories import StaffUserFactory
from tests.integrations.factories import InboundWebhookFactory, WorkflowRunFactory

pytestmark = pytest.mark.django_db

calls: list[str] = []


@webhooks.webhook_processor("test-provider")
def _process(delivery):
    calls.append(bytes(delivery.body).decode())
    if bytes(delivery.body) == b"boom":
        raise ValueError("cannot handle boom")


def test_a_delivery_is_stored_once_per_provider_and_key(run_on_commit):
    calls.clear()
    with run_on_commit():
        first, created = webhooks.inbound_webhook_store(
            provider="test-provider", dedupe_key="k1", headers={}, body=b"a"
        )
        again, created_again = webhooks.inbound_webhook_store(
            provider="test-provider", dedupe_key="k1", headers={}, body=b"a"
        )
        webhooks.inbound_webhook_store(provider="other", dedupe_key="k1", headers={}, body=b"a")
    assert created and not created_again and first.pk == again.pk
    assert calls == ["a"]  # processed once; "other" has no processor and fails, kept with its error
    first.refresh_from_db()
    assert first.status == DeliveryStatus.PROCESSED and first.attempts == 1
    assert InboundWebhook.objects.get(provider="other").last_error.startswith("LookupError")


def test_a_failed_delivery_keeps_its_error_and_is_reprocessed_from_the_admin(client, run_on_commit, monkeypatch):
    calls.clear()
    with run_on_commit():
        delivery, _ = webhooks.inbound_webhook_store(
            provider="test-provider", dedupe_key="k2", headers={}, body=b"boom"
        )
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and "cannot handle boom" in delivery.last_error

    client.force_login(StaffUserFactory(is_superuser=True))
    InboundWebhook.objects.filter(pk=delivery.pk).update(body=b"fixed")
    with run_on_commit():
        response = client.post(
            reverse("admin:integrations_inboundwebhook_changelist"),
            {"action": "reprocess", "_selected_action": [delivery.pk]},
        )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED and delivery.attempts == 2 and delivery.last_error == ""


def test_a_failed_delivery_is_retried_on_the_one_backoff_and_given_up_at_last(run_on_commit, monkeypatch):
    monkeypatch.setattr(webhooks, "MAX_ATTEMPTS", 3)
    with run_on_commit():
        delivery, _ = webhooks.inbound_webhook_store(
            provider="test-provider", dedupe_key="k-retry", headers={}, body=b"boom"
        )
    delivery.refresh_from_db()
    first_wait = delivery.next_attempt_at - timezone.now()
    assert delivery.status == DeliveryStatus.FAILED and timedelta(seconds=50) < first_wait <= timedelta(minutes=1)
    assert webhooks.inbound_webhooks_retry_due() == 0  # not due yet

    InboundWebhook.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert webhooks.inbound_webhooks_retry_due() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 2)
    assert delivery.next_attempt_at - timezone.now() > first_wait  # the wait doubles (core/retry.py)

    InboundWebhook.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    webhooks.inbound_webhooks_retry_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.DEAD, 3, None)
    assert webhooks.inbound_webhooks_retry_due() == 0


def test_a_received_delivery_whose_enqueue_was_lost_is_processed_by_the_schedule():
    calls.clear()
    delivery, _ = webhooks.inbound_webhook_store(provider="test-provider", dedupe_key="k-lost", headers={}, body=b"x")
    assert webhooks.inbound_webhooks_retry_due() == 0  # within the grace period the enqueued task has it
    InboundWebhook.objects.filter(pk=delivery.pk).update(received_at=timezone.now() - timedelta(minutes=6))
    assert webhooks.inbound_webhooks_retry_due() == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED and calls == ["x"]


attempts_seen: list[int] = []


@workflow("test_kind")
def _flaky(recorder):
    attempts_seen.append(recorder.run.attempts)
    with recorder.step("only.step"):
        if recorder.run.attempts < 2:
            raise RuntimeError("not yet")
    if recorder.run.input.get("skip"):
        raise RunSkipped("nothing to do")
    return "done"


def test_a_failed_run_backs_off_then_the_sweep_and_the_admin_retry_it(client, run_on_commit, settings, monkeypatch):
    monkeypatch.setattr(WorkflowRun._meta.get_field("kind"), "choices", None)
    with run_on_commit():
        run, _ = workflow_run_create(kind="test_kind", key="t:1", subject="s", input={})
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.last_error == "RuntimeError: not yet"
    assert run.next_attempt_at is not None and run.steps.get().outcome == "failed"
    assert workflow_runs_due() == []  # backoff not over

    client.force_login(StaffUserFactory(is_superuser=True))
    with run_on_commit():
        client.post(
            reverse("admin:integrations_workflowrun_changelist"), {"action": "retry", "_selected_action": [run.pk]}
        )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.outcome == "done" and run.attempts == 2
    step = run.steps.get()
    assert (step.outcome, step.attempts) == ("ok", 2)
    page = client.get(reverse("admin:integrations_workflowrun_change", args=[run.pk]))
    assert page.status_code == 200 and b"only.step" in page.content


def test_the_sweep_runs_failed_runs_whose_backoff_is_over(run_on_commit, monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(WorkflowRun._meta.get_field("kind"), "choices", None)
    with run_on_commit():
        run, _ = workflow_run_create(kind="test_kind", key="t:2", subject="s", input={"skip": True})
    WorkflowRun.objects.filter(pk=run.pk).update(next_attempt_at=timezone.now())
    with run_on_commit():
        assert workflow_runs_retry_task() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.SKIPPED and run.outcome == "nothing to do"
    assert run_execute(run_id=run.pk) is None  # a finished run is not run again


def test_enabled_but_unconfigured_provider_fails_loudly_naming_the_variable(settings):
    settings.MAUTIC_ENABLED = True
    settings.MAUTIC_BASE_URL = ""
    with pytest.raises(ImproperlyConfigured, match="MAUTIC_BASE_URL"):
        configuration.configuration_check()
    settings.MAUTIC_ENABLED = False
    configuration.configuration_check()  # disabled: nothing required


def test_the_mautic_endpoint_is_closed_when_mautic_is_disabled(client, settings):
    settings.MAUTIC_ENABLED = False
    assert client.post("/api/webhooks/mautic", data=b"{}", content_type="application/json").status_code == 404


def offered_actions(page) -> list[str]:
    form = page.context["action_form"]  # None when the page offers no action
    return [] if form is None else [name for name, _ in form.fields["action"].choices]


def test_support_and_marketing_see_runs_but_cannot_retry_or_reprocess(client, support_user, marketing_user):
    run = WorkflowRunFactory(kind="contact_invite", key="roles:1", subject="mautic-contact:1", status=RunStatus.FAILED)
    delivery = InboundWebhookFactory(provider="mautic", dedupe_key="roles:1", body=b"{}", status=DeliveryStatus.FAILED)
    runs_url = reverse("admin:integrations_workflowrun_changelist")
    deliveries_url = reverse("admin:integrations_inboundwebhook_changelist")
    for user in (support_user, marketing_user):
        client.force_login(user)
        page = client.get(runs_url)
        assert page.status_code == 200 and b"mautic-contact:1" in page.content
        assert "retry" not in offered_actions(page)
        assert client.get(reverse("admin:integrations_workflowrun_change", args=[run.pk])).status_code == 200
        client.post(runs_url, {"action": "retry", "_selected_action": [run.pk]})
        run.refresh_from_db()
        assert run.next_attempt_at is None  # not retried
    # Support reads incoming deliveries too (why an invite did not arrive); Marketing does not.
    client.force_login(support_user)
    page = client.get(deliveries_url)
    assert page.status_code == 200
    assert "reprocess" not in offered_actions(page)
    client.post(deliveries_url, {"action": "reprocess", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.attempts == 0
    client.force_login(marketing_user)
    assert client.get(deliveries_url).status_code == 403
