"""The local outbox: what the local run would have sent, one row per email, readable in the admin."""

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives, get_connection

from devtools.admin import OUTBOX_BACKEND
from devtools.models import OutboxEmail
from tests.customers.factories import StaffUserFactory


@pytest.fixture
def outbox(settings, db):
    settings.EMAIL_BACKEND = OUTBOX_BACKEND
    return OutboxEmail.objects


def send(*, key: str = "", subject: str = "Welcome to ModReady", html: str = "<p>Hello <b>Mia</b></p>") -> object:
    email = EmailMultiAlternatives(
        subject=subject,
        body="Hello Mia",
        from_email="ModReady <hello@modready.example>",
        to=["mia@example.com"],
        headers={"X-Entity-Ref-ID": key or "none"},
    )
    email.attach_alternative(html, "text/html")
    email.idempotency_key = key
    with get_connection() as connection:
        email.connection = connection
        email.send()
    return email


def test_an_email_is_stored_with_everything_that_would_have_left(outbox):
    email = send(key="email-queue-item:7")

    stored = outbox.get()
    assert stored.to == ["mia@example.com"]
    assert stored.from_email == "ModReady <hello@modready.example>"
    assert stored.subject == "Welcome to ModReady"
    assert stored.text == "Hello Mia"
    assert stored.html == "<p>Hello <b>Mia</b></p>"
    assert stored.headers["X-Entity-Ref-ID"] == "email-queue-item:7"
    assert stored.headers["Message-ID"]
    assert stored.idempotency_key == "email-queue-item:7"
    # The sender learns a message id, as from Resend, and the queue records it.
    assert email.anymail_status.message_id == stored.message_id != ""


def test_a_repeat_under_the_same_key_makes_no_second_row_and_gets_the_first_answer(outbox):
    first = send(key="email-queue-item:8")
    again = send(key="email-queue-item:8", subject="changed on the retry")

    assert outbox.count() == 1
    assert outbox.get().subject == "Welcome to ModReady"
    assert again.anymail_status.message_id == first.anymail_status.message_id


def test_emails_without_a_key_each_get_their_row(outbox):
    send()
    send()
    assert outbox.count() == 2


def test_the_queue_on_the_local_transport_puts_each_email_in_the_outbox_once(outbox, settings, default_flows):
    from automations.drain import email_queue_process
    from automations.installation import installation_id
    from automations.models import EmailQueueItem, QueueStatus
    from tests.automations.test_sending import queue_welcomes

    settings.AUTOMATIONS_EMAIL_TRANSPORT = "django"
    customers = queue_welcomes(2)  # welcome + setup tips each
    email_queue_process(sleep=lambda seconds: None, time_budget=30)

    items = list(EmailQueueItem.objects.all())
    assert {item.status for item in items} == {QueueStatus.SENT}
    assert sorted(e.to[0] for e in outbox.all()) == sorted(c.email for c in customers for _ in range(2))
    # The key handed to the transport carries the installation's id, as for Resend (automations/installation.py).
    namespaced = {f"{installation_id()}:{item.idempotency_key}" for item in items}
    assert {e.idempotency_key for e in outbox.all()} == namespaced
    assert {e.message_id for e in outbox.all()} == {item.provider_message_id for item in items}
    assert all("Welcome" in e.html or "tips" in e.subject.lower() for e in outbox.all())
    assert mail.outbox == []  # nothing went to the test backend instead


@pytest.mark.parametrize("role", ["support_user", "marketing_user"])
def test_support_and_marketing_read_the_outbox_but_cannot_change_it(outbox, client, role, request):
    send(key="k:1")
    client.force_login(request.getfixturevalue(role))

    listing = client.get("/admin/devtools/outboxemail/")
    assert listing.status_code == 200
    assert "Welcome to ModReady" in listing.content.decode()
    detail = client.get(f"/admin/devtools/outboxemail/{outbox.get().pk}/change/")
    assert detail.status_code == 200
    assert client.post(f"/admin/devtools/outboxemail/{outbox.get().pk}/delete/", {"post": "yes"}).status_code == 403
    assert outbox.count() == 1


def test_the_html_is_shown_in_a_sandboxed_frame_never_inline(outbox, client):
    send(key="k:2", html='<p>Hi</p><script>alert("x")</script>')
    client.force_login(StaffUserFactory(is_superuser=True))

    page = client.get(f"/admin/devtools/outboxemail/{outbox.get().pk}/change/").content.decode()
    assert '<iframe title="Email as sent" class="outbox-html" sandbox srcdoc="' in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page  # escaped into srcdoc
    assert '<script>alert("x")</script>' not in page


def test_staff_without_a_role_do_not_see_it(outbox, client):
    send(key="k:3")
    client.force_login(StaffUserFactory())
    assert client.get("/admin/devtools/outboxemail/").status_code == 403
