"""The per-customer card-update link in dunning emails: our own signed URL, safe to put in an email because it
holds no Stripe credential. Only a click on it creates the short-lived Stripe portal session
(billing/card_update.py), so a link read days later still works.

The token is core.signed_ids' time-stamped id token with its own salt over the customer's id: it expires
BILLING_CARD_UPDATE_LINK_DAYS after it was built. Anyone holding the link can open the card form for that customer
(like Stripe's own invoice link); the form only adds a card, it shows no card numbers.
"""

from django.conf import settings
from django.urls import reverse

from core.signed_ids import TimedIdToken, timed_id_token_make, timed_id_token_read

SALT = "billing.card-update-link"


def card_update_url(*, customer) -> str:
    """The absolute card-update link for `customer`, or "" when they have no Stripe customer (nothing to update)."""
    if not customer.stripe_customer_id:
        return ""
    token = timed_id_token_make(salt=SALT, key="c", id=customer.pk)
    return settings.SITE_URL + reverse("billing-card-update", kwargs={"token": token})


def card_update_token_read(token: str) -> TimedIdToken:
    """The link's state and, when valid, the customer's id."""
    max_age = settings.BILLING_CARD_UPDATE_LINK_DAYS * 86400
    return timed_id_token_read(salt=SALT, key="c", token=token, max_age_seconds=max_age)


def card_update_return_url() -> str:
    """Where Stripe's portal sends the customer back after the card form."""
    return settings.BILLING_CARD_UPDATE_RETURN_URL or settings.SITE_URL + reverse("billing-card-update-done")
