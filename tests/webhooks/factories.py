"""Factories for outgoing webhooks: an endpoint (a receiver on 127.0.0.1 that wants customer.churned) and one
delivery to it, due now."""

import json

import factory
from django.utils import timezone

from tests.customers.factories import CustomerFactory
from webhooks.models import OutboundDelivery, WebhookEndpoint


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    url = "http://127.0.0.1:9/hooks"
    event_types = factory.LazyFunction(lambda: ["customer.churned"])
    secret = factory.Sequence(lambda n: f"whsec_dGVzdC1zZWNyZXQt{n:08d}")


class OutboundDeliveryFactory(factory.django.DjangoModelFactory):
    """One message to one endpoint (webhooks.OutboundDelivery), pending and due."""

    class Meta:
        model = OutboundDelivery

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    customer = factory.SubFactory(CustomerFactory)
    event_type = "customer.churned"
    message_id = factory.Sequence(lambda n: f"msg_test_{n}")
    sequence = factory.Sequence(lambda n: n + 1)
    body = factory.LazyFunction(lambda: json.dumps({}))
    next_attempt_at = factory.LazyFunction(timezone.now)
