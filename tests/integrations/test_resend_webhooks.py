"""Resend's tracking webhook answers bad input with 400, a missing secret with 503, and is the only anymail URL."""

import json
import logging

import pytest
from django.urls import Resolver404, resolve

from automations.models import EmailEvent
from devtools.fakes.resend import SIGNING_SECRET, svix_sign
from integrations.resend.webhooks import ResendTrackingWebhookView
from tests.webhook_cases import WebhookCases
from tests.webhook_requests import event_fixture

pytestmark = pytest.mark.django_db

PATH = "/anymail/resend/tracking/"


@pytest.fixture
def secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "RESEND_SIGNING_SECRET": SIGNING_SECRET}
    return SIGNING_SECRET


def event_body(msg_id="msg_1") -> bytes:
    return json.dumps(event_fixture("resend", "email.delivered")).encode()


def post(client, body: bytes, headers: dict):
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    return client.post(PATH, data=body, content_type="application/json", **meta)


def test_a_signed_event_is_accepted_and_stored(client, secret):
    body = event_body()
    assert post(client, body, svix_sign(body, msg_id="msg_ok")).status_code == 200
    assert EmailEvent.objects.get().provider_event_id == "msg_ok"


@pytest.mark.parametrize(
    "signature",
    [
        "v1-no-comma",  # "v1<base64>" without the comma: unpacking fails in the Svix library
        "v1,abc,def",  # three parts
        "v1,***not base64***",
        "v1,QUJD=",  # base64 with broken padding
        "v1,\u00e9\u00e9\u00e9",  # non-ASCII
    ],
)
def test_a_malformed_signature_header_is_a_400_and_stores_nothing(client, secret, signature):
    body = event_body()
    headers = {**svix_sign(body, msg_id="msg_bad"), "svix-signature": signature}
    response = post(client, body, headers)
    assert response.status_code == 400
    assert not EmailEvent.objects.exists()


def test_a_body_that_is_not_utf8_is_a_400(client, secret):
    body = b'{"type": "email.delivered", "data": {"subject": "\xff\xfe"}}'
    response = post(client, body, svix_sign(body, msg_id="msg_latin"))
    assert response.status_code == 400
    assert response.json() == {"error": "body is not UTF-8"}
    assert not EmailEvent.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"data": {}}',
        b'{"type": "email.delivered", "data": 5}',
        b'{"type": "email.delivered", "data": null}',
        b'{"type": "email.bounced", "data": {"email_id": "em_1", "bounce": "gone"}}',
        b'{"type": "email.clicked", "data": {"email_id": "em_1", "click": "https://x.example"}}',
        b'{"type": "email.delivered", "data": {"email_id": "em_1", "headers": [1, 2]}}',
    ],
)
def test_a_signed_body_that_is_not_a_resend_event_is_a_400(client, secret, body):
    response = post(client, body, svix_sign(body, msg_id="msg_shape"))
    assert response.status_code == 400
    assert not EmailEvent.objects.exists()


def test_a_wrong_signature_is_a_400(client, secret):
    body = event_body()
    response = post(client, body, svix_sign(body, msg_id="msg_forged", secret="whsec_" + "QUJD" * 8))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid signature"}


@pytest.mark.parametrize("configured", ["", "   ", "whsec_###"])
def test_without_a_usable_signing_secret_the_endpoint_answers_503_and_logs_why(client, settings, caplog, configured):
    settings.ANYMAIL = {**settings.ANYMAIL, "RESEND_SIGNING_SECRET": configured}
    body = event_body()
    with caplog.at_level(logging.ERROR, logger="integrations.resend.webhooks"):
        # Signed with the test secret: without our own secret configured we cannot tell, so nothing is accepted.
        response = post(client, body, svix_sign(body, msg_id="msg_unconfigured"))
    assert response.status_code == 503
    assert not EmailEvent.objects.exists()
    assert "RESEND_SIGNING_SECRET" in caplog.text


def test_only_the_resend_tracking_url_is_mounted(client, secret):
    assert resolve(PATH).url_name == "resend-tracking"
    for path in ("/anymail/resend/inbound/", "/anymail/mailgun/tracking/", "/anymail/postmark/inbound/"):
        with pytest.raises(Resolver404):
            resolve(path)
        assert client.post(path, data="{}", content_type="application/json").status_code == 404


class TestResendTrackingWebhookCases(WebhookCases):
    """The shared cases (tests/webhook_cases.py): answered now, so a delivery is its tracking event."""

    provider = "resend"
    path = PATH
    event = "email.delivered"
    view_class = ResendTrackingWebhookView
    accepted_statuses = (200,)

    @pytest.fixture(autouse=True)
    def _configured(self, secret):
        pass

    def delivered_count(self) -> int:
        return EmailEvent.objects.count()

    def unconfigure(self, settings) -> None:
        settings.ANYMAIL = {**settings.ANYMAIL, "RESEND_SIGNING_SECRET": ""}
