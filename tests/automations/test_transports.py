"""The email-provider seam: the same queue code sends through either registered transport (the fake Resend's API and
a Django mail backend), and each transport's errors reach the queue as the provider-neutral SendError."""

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend

from automations.models import BatchStatus, EmailBatch, EmailQueueItem, QueueStatus
from automations.transports import EMAIL_TRANSPORTS, transport_get
from integrations.email_transport import SendError, SendErrorKind
from integrations.resend.client import ResendError

from .test_sending import queue_welcomes

pytestmark = pytest.mark.django_db


def _through_resend(request, settings):
    fake = request.getfixturevalue("resend")  # the fake Resend API (conftest.py)
    return lambda: sorted(email.to[0] for email in fake.delivered)


def _through_django(request, settings):
    settings.AUTOMATIONS_EMAIL_TRANSPORT = "django"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return lambda: sorted(to for message in mail.outbox for to in message.to)


# How to send through each registered transport in a test, and read back whom it sent to. A provider added to
# automations/transports.py without a line here fails the test below, by name.
SENT_THROUGH = {"resend": _through_resend, "django": _through_django}


@pytest.fixture(params=sorted(EMAIL_TRANSPORTS))
def sent_through(request, settings):
    """Each registered transport in turn; returns a function listing the recipients it sent to."""
    setup = SENT_THROUGH.get(request.param)
    assert setup is not None, f"{request.param}: add how a test sends through it to SENT_THROUGH"
    return setup(request, settings)


def test_the_queue_sends_through_every_registered_transport(sent_through, drain):
    customers = queue_welcomes(2)  # 4 emails

    result = drain()

    assert result.sent == 4
    assert sent_through() == sorted(customer.email for customer in customers for _ in range(2))
    items = EmailQueueItem.objects.all()
    assert {item.status for item in items} == {QueueStatus.SENT}
    assert all(item.provider_message_id for item in items)


class DroppedConnectionBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionResetError("connection dropped mid-call")


def test_a_django_backend_failure_is_an_unknown_outcome_retried_under_the_same_key(settings, drain):
    settings.AUTOMATIONS_EMAIL_TRANSPORT = "django"
    settings.EMAIL_BACKEND = f"{__name__}.DroppedConnectionBackend"
    queue_welcomes(1)
    settings.AUTOMATIONS_BATCH_SIZE = 1

    drain(time_budget=1)

    batches = EmailBatch.objects.all()
    assert batches and all(batch.status == BatchStatus.SENDING and batch.possibly_accepted for batch in batches)
    assert all("ConnectionResetError" in batch.last_error for batch in batches)


def test_the_transports_raise_the_provider_neutral_error(settings):
    settings.AUTOMATIONS_EMAIL_TRANSPORT = "django"
    settings.EMAIL_BACKEND = f"{__name__}.DroppedConnectionBackend"
    message = {"from": "a@example.com", "to": ["b@example.com"], "subject": "s", "html": "<p>h</p>", "text": "t"}
    with pytest.raises(SendError) as caught:
        transport_get().send(message=message)
    assert caught.value.kind == SendErrorKind.UNKNOWN and caught.value.status == 0


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (429, "{}", SendErrorKind.RATE_LIMITED),
        (401, '{"name": "missing_api_key"}', SendErrorKind.CONFIGURATION),
        (403, '{"name": "validation_error"}', SendErrorKind.CONFIGURATION),
        (429, '{"name": "daily_quota_exceeded"}', SendErrorKind.CONFIGURATION),
        (409, '{"name": "invalid_idempotent_request"}', SendErrorKind.KEY_CONFLICT),
        (409, '{"name": "concurrent_idempotent_requests"}', SendErrorKind.UNKNOWN),
        (502, "", SendErrorKind.UNKNOWN),
        (0, "Timeout", SendErrorKind.UNKNOWN),
        (422, '{"name": "validation_error"}', SendErrorKind.REFUSED),
    ],
)
def test_resend_answers_map_to_neutral_kinds(status, body, kind):
    error = ResendError(status=status, body=body).as_send_error()
    assert (error.kind, error.provider, error.status) == (kind, "resend", status)
    assert bool(error.pause_cause) == (kind == SendErrorKind.CONFIGURATION)
