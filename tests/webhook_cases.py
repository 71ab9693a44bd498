"""The shared test cases of every incoming webhook (in the manner of django-anymail's tests/webhook_cases.py): each
provider's webhook tests subclass one of these and fill in a few attributes and hooks, so Stripe, Mautic, Resend and
Discord are all held to the same refusals (missing or bad signature, a tampered body, oversize, malformed, not
configured), one error shape, duplicates counted once and, for stored deliveries, a reprocess from the admin.

A subclass provides an autouse fixture that configures the provider (and its fakes) for each test, and:
    provider, path, event (a fixture name under tests/fixtures/<provider>/), view_class
    delivered_count() -> how many deliveries were accepted (stored rows, or what an answered delivery recorded)
    unconfigure(settings) -> remove the provider's secret
"""

import json

from django.urls import reverse

from tests.customers.factories import StaffUserFactory
from tests.webhook_requests import FORGED_SECRETS, event_fixture, post_signed, signature_headers


class WebhookCases:
    provider: str
    path: str
    event: str
    view_class: type
    bad_signature_status = 400
    unconfigured_status = 503
    accepted_statuses = (200, 202)

    def delivered_count(self) -> int:
        raise NotImplementedError

    def unconfigure(self, settings) -> None:
        raise NotImplementedError

    def body(self) -> bytes:
        return json.dumps(event_fixture(self.provider, self.event)).encode()

    def post(self, client, body: bytes, *, headers: dict | None = None):
        return post_signed(client, self.provider, self.path, body, headers=headers)

    def assert_refused(self, response, status: int) -> None:
        assert response.status_code == status, response.content[:300]
        assert response["Content-Type"] == "application/json"
        assert isinstance(response.json()["error"], str) and response.json()["error"]
        assert self.delivered_count() == 0

    # --- the cases ----------------------------------------------------------------------------------------------

    def test_a_signed_delivery_is_accepted(self, client, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            response = self.post(client, self.body())
        assert response.status_code in self.accepted_statuses, response.content[:300]
        assert self.delivered_count() == 1

    def test_missing_signature_is_refused(self, client):
        self.assert_refused(self.post(client, self.body(), headers={}), self.bad_signature_status)

    def test_bad_signature_is_refused(self, client):
        body = self.body()
        forged = signature_headers(self.provider, body, secret=FORGED_SECRETS[self.provider])
        self.assert_refused(self.post(client, body, headers=forged), self.bad_signature_status)

    def test_a_tampered_body_is_refused(self, client):
        body = self.body()
        headers = signature_headers(self.provider, body)
        self.assert_refused(self.post(client, body + b" ", headers=headers), self.bad_signature_status)

    def test_an_oversized_body_is_413(self, client, monkeypatch):
        body = self.body()
        monkeypatch.setattr(self.view_class, "max_body_bytes", lambda view: len(body) - 1)
        self.assert_refused(self.post(client, body), 413)

    def test_a_signed_malformed_body_is_400(self, client):
        self.assert_refused(self.post(client, b'{"not": json'), 400)

    def test_unconfigured_is_refused_so_the_provider_retries(self, client, settings):
        self.unconfigure(settings)
        self.assert_refused(self.post(client, self.body()), self.unconfigured_status)

    def test_only_post(self, client):
        assert client.get(self.path).status_code == 405

    def test_a_duplicate_delivery_counts_once(self, client, django_capture_on_commit_callbacks):
        body = self.body()
        headers = signature_headers(self.provider, body)
        with django_capture_on_commit_callbacks(execute=True):
            first = self.post(client, body, headers=headers)
            again = self.post(client, body, headers=headers)
        assert first.status_code in self.accepted_statuses and again.status_code in self.accepted_statuses
        assert self.delivered_count() == 1


class StoredWebhookCases(WebhookCases):
    """For the deliveries stored then processed in a task: the stored row can be reprocessed from its admin."""

    def stored_row(self):
        raise NotImplementedError

    def test_reprocess_from_the_admin(self, client, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            self.post(client, self.body())
        row = self.stored_row()
        assert (row.status, row.attempts) == ("processed", 1)
        client.force_login(StaffUserFactory(is_superuser=True))
        changelist = reverse(f"admin:{row._meta.app_label}_{row._meta.model_name}_changelist")
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(changelist, {"action": "reprocess", "_selected_action": [row.pk]})
        assert response.status_code == 302
        row.refresh_from_db()
        assert (row.status, row.attempts) == ("processed", 2)
