"""A queue item's page shows the email as stored and sent (or, not rendered yet, a labelled preview), and Marketing
retries and cancels emails from the list and from the page."""

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from automations.models import EmailBatch, EmailQueueItem, EmailTemplate, QueueStatus
from tests.customers.factories import CustomerFactory

from .conftest import make_due, subscription_payload
from .factories import QueuedEmailFactory

pytestmark = pytest.mark.django_db


def item_url(item):
    return reverse("admin:automations_emailqueueitem_change", args=[item.pk])


@pytest.fixture
def welcomed(publish, drain):
    """A customer whose welcome email went out (through the local transport) and whose tips email waits."""
    customer = CustomerFactory(name="Robin Miner")
    publish("subscription.created", customer, subscription_payload())
    drain()
    return customer


def test_a_sent_email_is_shown_exactly_as_stored_even_after_its_template_changed(client, marketing_user, welcomed):
    item = EmailQueueItem.objects.get(customer=welcomed, status=QueueStatus.SENT)
    (stored,) = [e["message"] for e in EmailBatch.objects.get(pk=item.batch_id).messages if e["item_id"] == item.pk]
    (delivered,) = mail.outbox
    assert delivered.subject == stored["subject"]
    EmailTemplate.objects.filter(pk=item.step.template_id).update(subject="Changed afterwards", html_body="<p>New</p>")

    client.force_login(marketing_user)
    response = client.get(item_url(item))
    page = response.content.decode()
    assert response.context["email"]["state"] == "stored"
    assert "The email as sent" in page and "Preview" not in page.split('id="rendered-email"')[1].split("</h2>")[0]
    assert f'<td id="email-subject">{stored["subject"]}</td>' in page
    assert "Changed afterwards" not in page
    # The HTML is shown in a sandboxed frame (no scripts, no same-origin), escaped into its srcdoc.
    frame = page.split('<iframe id="email-html"')[1].split(">")[0]
    assert " sandbox " in frame and "allow-" not in frame
    assert response.context["email"]["html"] == stored["html"]
    assert response.context["email"]["text"] == stored["text"] == delivered.body
    assert "Robin" in page.split('id="email-text"')[1]


def test_a_pending_email_says_it_is_not_rendered_and_shows_a_labelled_preview(client, marketing_user, welcomed):
    item = EmailQueueItem.objects.get(customer=welcomed, status=QueueStatus.PENDING)
    client.force_login(marketing_user)
    response = client.get(item_url(item))
    page = response.content.decode()
    assert response.context["email"]["state"] == "preview"
    assert "Not rendered yet" in page and "preview rendered now" in page
    assert "Robin" in response.context["email"]["text"]
    assert not EmailBatch.objects.filter(items=item).exists()  # previewing wrote nothing


def test_a_pending_email_whose_template_does_not_render_says_so(client, marketing_user, welcomed):
    item = EmailQueueItem.objects.get(customer=welcomed, status=QueueStatus.PENDING)
    EmailTemplate.objects.filter(pk=item.step.template_id).update(html_body="{{ nope }}")
    client.force_login(marketing_user)
    response = client.get(item_url(item))
    assert response.context["email"]["state"] == "error"
    assert "does not render now" in response.content.decode()


def test_marketing_retries_a_failed_email_and_cancels_a_pending_one_from_their_pages(
    client, marketing_user, publish, run_on_commit
):
    customer = CustomerFactory()
    EmailTemplate.objects.filter(name="Welcome").update(html_body="{{ nope }}")
    publish("subscription.created", customer, subscription_payload())
    failed = EmailQueueItem.objects.get(step__order=1)
    pending = EmailQueueItem.objects.get(step__order=2)
    assert failed.status == QueueStatus.FAILED
    EmailTemplate.objects.filter(name="Welcome").update(html_body="<p>Welcome!</p>")

    client.force_login(marketing_user)
    page = client.get(item_url(failed)).content.decode()
    assert 'id="retry-email"' in page and 'id="cancel-email"' not in page
    assert client.get(reverse("admin:automations_emailqueueitem_retry", args=[failed.pk])).status_code == 405
    with run_on_commit():
        response = client.post(reverse("admin:automations_emailqueueitem_retry", args=[failed.pk]))
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.status == QueueStatus.SENT
    assert [m.to for m in mail.outbox] == [[customer.email]]

    assert 'id="cancel-email"' in client.get(item_url(pending)).content.decode()
    client.post(reverse("admin:automations_emailqueueitem_cancel", args=[pending.pk]))
    pending.refresh_from_db()
    assert pending.status == QueueStatus.CANCELLED
    assert pending.last_error == f"Cancelled by {marketing_user.username}"


def test_marketing_retries_and_cancels_from_the_list(client, marketing_user, publish, run_on_commit):
    EmailTemplate.objects.filter(name="Welcome").update(html_body="{{ nope }}")
    customers = CustomerFactory.create_batch(2)
    for customer in customers:
        publish("subscription.created", customer, subscription_payload())
    failed = list(EmailQueueItem.objects.filter(step__order=1))
    pending = list(EmailQueueItem.objects.filter(step__order=2))
    EmailTemplate.objects.filter(name="Welcome").update(html_body="<p>Welcome!</p>")
    client.force_login(marketing_user)
    url = reverse("admin:automations_emailqueueitem_changelist")
    with run_on_commit():
        response = client.post(
            url, {"action": "retry_now", "_selected_action": [i.pk for i in failed] + [pending[0].pk]}, follow=True
        )
    page = response.content.decode()
    assert "2 failed email(s) queued again." in page
    assert "1 selected email(s) were not failed" in page
    client.post(url, {"action": "cancel_pending", "_selected_action": [pending[1].pk]})
    statuses = sorted(EmailQueueItem.objects.values_list("status", flat=True))
    assert statuses == ["cancelled", "pending", "sent", "sent"]


def test_support_cannot_retry_or_cancel(client, support_user, welcomed):
    pending = EmailQueueItem.objects.get(status=QueueStatus.PENDING)
    client.force_login(support_user)
    assert client.post(reverse("admin:automations_emailqueueitem_cancel", args=[pending.pk])).status_code == 403
    pending.refresh_from_db()
    assert pending.status == QueueStatus.PENDING


def test_the_queue_list_keeps_its_query_count_as_the_queue_grows(client, marketing_user, welcomed, drain):
    client.force_login(marketing_user)
    url = reverse("admin:automations_emailqueueitem_changelist")

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    client.get(url)  # warm the per-process caches (content types) first
    small = count()
    for _ in range(15):
        QueuedEmailFactory()
    make_due()
    drain()
    assert EmailQueueItem.objects.count() > 15
    assert count() == small
