"""The three default flows end to end: a domain event in, emails at the fake Resend out, in order and on time."""

import pytest

from automations.models import EmailQueueItem, QueueStatus
from tests.customers.factories import CustomerFactory

from .conftest import make_due, payment_failed_payload, subscription_payload

pytestmark = pytest.mark.django_db


def subjects(resend, customer):
    return [e.message["subject"] for e in resend.delivered_to(customer.email)]


def test_welcome_flow(resend, publish, drain):
    customer = CustomerFactory(name="Steve Crafter")
    publish("subscription.created", customer, subscription_payload())
    assert subjects(resend, customer) == ["Welcome to ModReady, Steve - your server is ready"]
    welcome = resend.delivered[0].message
    assert "Open my server panel" in welcome["html"] and "$19.99 per month" in welcome["text"]
    assert "List-Unsubscribe" not in welcome["headers"]

    make_due()
    drain()
    assert subjects(resend, customer)[1] == "5 tips to get the most out of Modded Server 8 GB"
    assert resend.duplicates() == {}


def test_dunning_flow_until_the_final_notice(resend, publish, drain):
    customer = CustomerFactory(name="Alex")
    publish("payment.failed", customer, payment_failed_payload(next_payment_attempt="2036-12-04T10:00:00Z"))
    first = resend.delivered_to(customer.email)[0].message
    assert first["subject"] == "Your ModReady payment didn't go through"
    assert "December 4, 2036" in first["text"] and "$19.99" in first["text"]
    assert 'href="https://invoice.stripe.com/i/in_1"' in first["html"]

    for _ in range(2):
        next_step = EmailQueueItem.objects.filter(status=QueueStatus.PENDING).order_by("scheduled_at").first()
        make_due(EmailQueueItem.objects.filter(pk=next_step.pk))
        drain()
    assert subjects(resend, customer)[1:] == [
        "Reminder: your server needs a new payment method",
        "Final notice: your ModReady server will be suspended",
    ]


def test_dunning_stops_at_recovery(resend, publish, drain):
    customer = CustomerFactory()
    publish("payment.failed", customer, payment_failed_payload())
    publish(
        "payment.recovered", customer, {"invoice_id": "in_1", "subscription_id": "sub_1", "product_id": "prod_modded"}
    )
    make_due()
    drain()
    assert len(resend.delivered_to(customer.email)) == 1


def test_win_back_flow_for_an_opted_in_customer(resend, publish, drain):
    customer = CustomerFactory(name="Sam", opt_in_confirmed=True)
    publish(
        "subscription.canceled",
        customer,
        {"subscription_id": "sub_1", "product_id": "p", "cancellation_reason": "too_expensive"},
    )
    assert resend.delivered == []  # the first win-back email waits three days
    make_due()
    drain()
    assert subjects(resend, customer) == [
        "Your world is saved, Sam",
        "New at ModReady: faster servers and one-click modpacks",
        "Sam, your first month back is on us",
    ]
    assert len(resend.requests_to("POST", "/emails/batch")) == 1
    first = resend.delivered_to(customer.email)[0].message
    assert "You told us something wasn't right" in first["text"]
    assert "Restart your server: https://modready.example" in first["text"]
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
