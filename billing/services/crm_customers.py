"""The CRM side of a Stripe customer: found or created through customers.services, kept in step with Stripe."""

from django.db import transaction

from customers.consent import customer_time_zone_default_from_country
from customers.models import Customer
from customers.services import customer_upsert, normalize_email

from ..stripe_objects import customer_email_and_name


class MissingCustomerEmail(Exception):
    """A Stripe customer without an email cannot become a CRM customer (email is the CRM's contact key)."""


def crm_customer_for_stripe(*, stripe_customer_id: str, stripe_customer: dict | None) -> Customer:
    """The CRM customer for a Stripe customer, created or updated through customers.services (Stripe id first)."""
    email, name = customer_email_and_name(stripe_customer)
    existing = Customer.objects.filter(stripe_customer_id=stripe_customer_id).first() if stripe_customer_id else None
    if existing and (not email or existing.email == normalize_email(email)) and (not name or existing.name == name):
        _time_zone_from_country(existing, stripe_customer)
        return existing  # nothing to change: skip customer_upsert's locking read
    if not email and not stripe_customer_id:
        raise MissingCustomerEmail("A Stripe object with neither a customer id nor an email")
    fields = {"name": name} if name else {}
    customer, _ = customer_upsert(email=email, stripe_customer_id=stripe_customer_id, **fields)
    _time_zone_from_country(customer, stripe_customer)
    return customer


def _time_zone_from_country(customer: Customer, stripe_customer: dict | None) -> None:
    """Quiet hours need the customer's time zone: until one is set, the zone of the country on Stripe's customer
    (address.country, https://docs.stripe.com/api/customers/object#customer_object-address)."""
    address = (stripe_customer or {}).get("address") or {}
    if not customer.time_zone and isinstance(address, dict) and address.get("country"):
        customer_time_zone_default_from_country(customer=customer, country=address["country"])


@transaction.atomic
def stripe_customer_apply(*, stripe_customer: dict) -> Customer | None:
    """customer.created/updated: keep a known CRM customer's email and name in step with Stripe
    (https://docs.stripe.com/api/customers/object). Unknown Stripe customers are not created here: only a ModReady
    subscription or checkout makes someone a CRM customer."""
    stripe_customer_id = stripe_customer.get("id") or ""
    if not Customer.objects.filter(stripe_customer_id=stripe_customer_id).exists():
        return None
    return crm_customer_for_stripe(stripe_customer_id=stripe_customer_id, stripe_customer=stripe_customer)
