"""EMAIL_DELIVERY=disabled: the queue sends nothing and marks nothing sent; enabling delivery sends what waited."""

import pytest

from automations.models import EmailQueueItem, QueueStatus
from tests.customers.factories import CustomerFactory

from .conftest import make_due, subscription_payload

pytestmark = pytest.mark.django_db


def test_with_delivery_disabled_emails_stay_pending_and_go_out_once_enabled(settings, resend, publish, drain):
    settings.EMAIL_DELIVERY = "disabled"
    customer = CustomerFactory()
    publish("subscription.created", customer, subscription_payload())
    make_due()
    result = drain()

    items = EmailQueueItem.objects.filter(customer=customer)
    assert items.count() == 2
    assert set(items.values_list("status", flat=True)) == {QueueStatus.PENDING}
    assert not items.filter(sent_at__isnull=False).exists()
    assert result.sent == 0
    assert resend.delivered_to(customer.email) == []

    settings.EMAIL_DELIVERY = "enabled"
    drain()
    assert set(items.values_list("status", flat=True)) == {QueueStatus.SENT}
    assert len(resend.delivered_to(customer.email)) == 2
