"""The signed link to a customer's email preference page (automations/preference_views.py), in every email's context
as `preferences_url`. No login: the token is the customer's id, signed (core.signed_ids) with SECRET_KEY (checked
against SECRET_KEY_FALLBACKS too), the same bytes every time it is made (a batch re-sent under its idempotency key
carries the same message) and without expiry, like the unsubscribe link: a link in an old email keeps working."""

import functools

from django.conf import settings

from core.signed_ids import id_token_make, id_token_read

PREFERENCES_SALT = "automations.preferences"


def preferences_token_make(*, customer_id: int) -> str:
    return id_token_make(salt=PREFERENCES_SALT, id=customer_id)


def preferences_token_read(*, token: str) -> int | None:
    """The customer id of a token of ours, else None."""
    return id_token_read(salt=PREFERENCES_SALT, token=token)


def preferences_url(*, customer_id: int | None) -> str:
    """The customer's preference page; without a customer (a preview, a test send to staff) a placeholder that
    opens no one's preferences."""
    token = preferences_token_make(customer_id=customer_id) if customer_id is not None else "preview"
    return settings.SITE_URL + _path().replace("TOKEN", token)


@functools.cache
def _path() -> str:
    from django.urls import reverse

    return reverse("automations:preferences", args=["TOKEN"])
