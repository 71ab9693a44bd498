"""Factories for billing's own rows. Stripe's side (dj-stripe's mirror) comes from the fake Stripe, not from here."""

from datetime import UTC, datetime, timedelta

import factory

from billing.models import Subscription, SubscriptionStatus
from tests.customers.factories import CustomerFactory


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """A CRM subscription as billing writes it from Stripe: an active monthly plan, in its first month."""

    class Meta:
        model = Subscription

    customer = factory.SubFactory(CustomerFactory)
    stripe_subscription_id = factory.Sequence(lambda n: f"sub_test{n:06d}")
    product_id = "prod_modready_server"
    product_name = "ModReady Server"
    price_id = "price_modready_server_monthly"
    status = SubscriptionStatus.ACTIVE
    amount = 1499
    currency = "eur"
    interval = "month"
    stripe_created = factory.LazyFunction(lambda: datetime.now(UTC) - timedelta(days=3))
    current_period_start = factory.SelfAttribute("stripe_created")
    current_period_end = factory.LazyAttribute(lambda s: s.stripe_created + timedelta(days=30))
