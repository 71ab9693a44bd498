"""A paying customer known to the CRM, at the fake Stripe, for the cancellation flow's tests; and Stripe's emitted
events delivered to our webhook like Stripe would."""

from billing.models import Subscription
from billing.retention.models import SaveOffer
from devtools.fakes.stripe.objects import stripe_event
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.models import EVENT_TYPES

PANEL_EVENTS = list(EVENT_TYPES)


def subscribed(fake_stripe, deliver, *, email: str = "sam@example.com", unit_amount: int = 1499):
    """(world, CRM subscription): a ModReady subscription created at the fake and delivered to the CRM."""
    world = fake_stripe.add_subscription(email=email, price=None)
    if unit_amount != world.price["unit_amount"]:
        world.price.update(unit_amount=unit_amount)
        world.subscription["items"]["data"][0]["price"]["unit_amount"] = unit_amount
    response = deliver(stripe_event("customer.subscription.created", world.subscription))
    assert response.status_code == 200
    return world, Subscription.objects.get(stripe_subscription_id=world.subscription["id"])


def deliver_emitted(fake_stripe, deliver) -> list[dict]:
    """Deliver every event the fake emitted since the last call, in order."""
    with fake_stripe.lock:
        events, fake_stripe.emitted[:] = list(fake_stripe.emitted), []
    for event in events:
        assert deliver(event).status_code == 200
    return events


def panel_endpoint():
    return WebhookEndpointFactory(event_types=PANEL_EVENTS)


def offer(reason: str, kind: str, **terms) -> SaveOffer:
    return SaveOffer.objects.create(reason=reason, kind=kind, **terms)
