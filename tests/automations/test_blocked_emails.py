"""Issue 18, "Suppression": a hard-bounced customer's payment emails are blocked too. Every screen that lists them
says so, with the reason (the customer page, the queue list, the dunning rule's page), instead of "Pending"."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from automations.models import AutomationRule, EmailQueueItem, QueueStatus, SuppressionReason
from automations.services.suppressions import suppression_add
from tests.customers.factories import CustomerFactory

from .conftest import make_due, payment_failed_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def bounced(publish):
    """A customer whose address hard-bounced, then whose renewal payment failed: dunning queued three emails."""
    customer = CustomerFactory(email="robin@dead.example", opt_in_confirmed=True)
    suppression_add(email=customer.email, reason=SuppressionReason.HARD_BOUNCE, note="550 no such user")
    publish("payment.failed", customer, payment_failed_payload())
    assert EmailQueueItem.objects.filter(customer=customer, enrollment__rule__name="Dunning").count() == 3
    return customer


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_customer_page_says_payment_emails_are_blocked_and_why(admin_client, bounced):
    page = admin_client.get(reverse("admin:customers_customer_change", args=[bounced.pk])).content.decode()

    verdict = text_of(page[page.index('id="fact-consent"') : page.index('id="fact-tickets"')])
    assert "All email is blocked, payment and account emails too" in verdict
    assert "hard-bounced" in verdict
    assert "Marketing email is held" not in verdict  # not only marketing: that was the misleading line

    emails = page[page.index('id="emails"') : page.index('id="enrollments"')]
    rows = re.findall(r'<tr class="email-row" data-status="([a-z]+)"', emails)
    assert rows == ["blocked", "blocked", "blocked"]
    assert ">Pending<" not in emails
    assert "The address hard-bounced" in emails
    counts = text_of(emails[: emails.index("</p>")])
    assert "0 pending" in counts and "3 blocked" in counts

    enrollments = text_of(page[page.index('id="enrollments"') : page.index('id="tickets"')])
    assert "(blocked: the address hard-bounced" in enrollments  # the sequence's next step


def test_an_unsubscribed_customer_still_gets_payment_emails_and_the_page_says_so(admin_client, publish):
    customer = CustomerFactory(opt_in_confirmed=True)
    suppression_add(email=customer.email, reason=SuppressionReason.UNSUBSCRIBE)
    publish("payment.failed", customer, payment_failed_payload())

    page = admin_client.get(reverse("admin:customers_customer_change", args=[customer.pk])).content.decode()
    verdict = text_of(page[page.index('id="fact-consent"') : page.index('id="fact-tickets"')])
    assert "Marketing email is held: the customer unsubscribed." in verdict
    assert "Payment and account emails go out." in verdict
    emails = page[page.index('id="emails"') : page.index('id="enrollments"')]
    statuses = re.findall(r'data-status="([a-z]+)"', emails)
    assert "pending" in statuses and "blocked" not in statuses  # the first one went out already


def test_the_queue_list_shows_them_blocked_with_the_reason_and_filters_them(admin_client, bounced):
    other = CustomerFactory(email="fine@example.com")
    url = reverse("admin:automations_emailqueueitem_changelist")

    page = admin_client.get(url, {"q": bounced.email}).content.decode()
    assert page.count('data-status="blocked"') == 3
    assert 'data-status="pending"' not in page
    assert "The address hard-bounced" in page

    blocked = admin_client.get(url, {"goes_out": "blocked"}).content.decode()
    assert blocked.count('data-status="blocked"') == 3 and other.email not in blocked

    waiting = EmailQueueItem.objects.filter(customer=bounced, status=QueueStatus.PENDING).first()
    item_page = admin_client.get(reverse("admin:automations_emailqueueitem_change", args=[waiting.pk]))
    assert 'id="email-shown-state" data-status="blocked"' in item_page.content.decode()
    assert "The address hard-bounced" in item_page.content.decode()


def test_once_the_queue_refused_them_they_stay_blocked_in_words(admin_client, bounced, drain):
    make_due()
    drain()

    assert mail.outbox == []
    refused = EmailQueueItem.objects.filter(customer=bounced, status=QueueStatus.SUPPRESSED)
    assert refused.count() == 3
    assert all("hard-bounced" in item.last_error for item in refused)
    page = admin_client.get(reverse("admin:customers_customer_change", args=[bounced.pk])).content.decode()
    emails = page[page.index('id="emails"') : page.index('id="enrollments"')]
    assert re.findall(r'data-status="([a-z]+)"', emails) == ["blocked"] * 3
    assert ">Suppressed<" not in emails and "hard_bounce" not in emails


def test_the_dunning_rule_page_counts_them_as_blocked(admin_client, bounced, publish):
    payer = CustomerFactory()
    publish("payment.failed", payer, payment_failed_payload(subscription_id="sub_2"))
    dunning = AutomationRule.objects.get(name="Dunning")

    page = admin_client.get(reverse("admin:automations_automationrule_change", args=[dunning.pk])).content.decode()
    # The reminder before Stripe's next attempt (step 2): the payer's will go out, the bounced customer's cannot.
    reminder = page[page.index('id="step-numbers"') :].split("<tbody>", 1)[1].split("</tr>")[1]
    waiting = re.search(r'data-unsent="waiting">(\d+)<', reminder).group(1)
    blocked = re.search(r'data-unsent="blocked">(\d+)<', reminder).group(1)
    assert (waiting, blocked) == ("1", "1")
