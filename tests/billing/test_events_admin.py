"""The Stripe events list names the customer each event is about."""

import pytest
from django.urls import reverse

from billing.models import StripeEventProcessing
from customers.models import Customer
from devtools.fakes.stripe.objects import stripe_event

pytestmark = pytest.mark.django_db


def test_the_events_list_shows_the_crm_customer_of_each_event(fake_stripe, deliver, admin_client):
    world = fake_stripe.add_subscription(email="events@example.com")
    deliver(stripe_event("customer.subscription.created", world.subscription))
    processing = StripeEventProcessing.objects.get()
    customer = Customer.objects.get(email="events@example.com")
    assert processing.stripe_customer_id == customer.stripe_customer_id != ""

    page = admin_client.get(reverse("admin:billing_stripeeventprocessing_changelist")).content.decode()
    assert reverse("admin:customers_customer_change", args=[customer.pk]) in page
    assert "events@example.com" in page
