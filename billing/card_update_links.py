"""The per-customer card-update link in dunning emails: our own signed URL, safe to put in an email because it
holds no Stripe credential. Only a click on it creates the short-lived Stripe portal session
(billing/card_update.py), so a link read days later still works.

The token is django.core.signing with its own salt over the customer's id, time-stamped: it expires
BILLING_CARD_UPDATE_LINK_DAYS after it was built. Anyone holding the link can open the card form for that customer
(like Stripe's own invoice link); the form only adds a card, it shows no card numbers.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "billing.card-update-link"


@dataclass(frozen=True)
class CardUpdateToken:
    state: str  # "valid", "expired" or "invalid"
    customer_id: int | None = None


def card_update_url(*, customer) -> str:
    """The absolute card-update link for `customer`, or "" when they have no Stripe customer (nothing to update)."""
    if not customer.stripe_customer_id:
        return ""
    token = signing.dumps({"c": customer.pk}, salt=SALT, compress=False)
    return settings.SITE_URL + reverse("billing-card-update", kwargs={"token": token})


def card_update_token_read(token: str) -> CardUpdateToken:
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.BILLING_CARD_UPDATE_LINK_DAYS * 86400)
    except signing.SignatureExpired:
        return CardUpdateToken("expired")
    except signing.BadSignature:
        return CardUpdateToken("invalid")
    customer_id = data.get("c") if isinstance(data, dict) else None
    if not isinstance(customer_id, int):
        return CardUpdateToken("invalid")
    return CardUpdateToken("valid", customer_id)


def card_update_return_url() -> str:
    """Where Stripe's portal sends the customer back after the card form."""
    return settings.BILLING_CARD_UPDATE_RETURN_URL or settings.SITE_URL + reverse("billing-card-update-done")
