"""Writes to a Stripe customer made by staff from the back-office: correcting the email address, and a goodwill
credit (billing/support_actions.py).

Stripe is the source of a Stripe customer's email (customers.services.customer_upsert takes it from every
customer.* event and the daily sync), so a correction is made in Stripe first: written only in the CRM it would be
undone by the next event. https://docs.stripe.com/api/customers/update
"""

from collections.abc import Iterator
from contextlib import contextmanager

import stripe
from django.conf import settings
from djstripe.settings import djstripe_settings

# (connect, read) seconds: a staff member is waiting on the page.
TIMEOUT = (5, 15)
# Safe to retry: every call carries an idempotency key, so a retry after a lost answer changes nothing twice.
RETRIES = 2


class StripeCustomerError(Exception):
    """Stripe refused the change or could not be reached; `message` is fit for the staff member's page."""

    def __init__(self, message: str, *, status: int | None = None, code: str = ""):
        super().__init__(message)
        self.status, self.code = status, code


def _client() -> stripe.StripeClient:
    return stripe.StripeClient(
        djstripe_settings.STRIPE_SECRET_KEY,
        stripe_version=settings.STRIPE_API_VERSION,
        base_addresses={"api": stripe.api_base},  # dj-stripe sets it from STRIPE_API_HOST (the fakes in tests)
        max_network_retries=RETRIES,
        http_client=stripe.RequestsClient(timeout=TIMEOUT),
    )


@contextmanager
def _stripe_errors(*, what: str, unconfirmed: str) -> Iterator[None]:
    """Stripe's errors as StripeCustomerError: a refusal names Stripe's reason; anything else (a timeout, a 5xx, a
    dropped connection) is an unknown outcome, said in `unconfirmed`."""
    try:
        yield
    except (stripe.InvalidRequestError, stripe.IdempotencyError) as exc:
        raise StripeCustomerError(
            f"Stripe refused the {what}: {exc.user_message or exc}", status=exc.http_status, code=exc.code or ""
        ) from exc
    except stripe.StripeError as exc:
        raise StripeCustomerError(
            f"Stripe did not confirm the {what} ({type(exc).__name__}); {unconfirmed}",
            status=exc.http_status,
            code=getattr(exc, "code", "") or "",
        ) from exc


def stripe_customer_email_set(*, stripe_customer_id: str, email: str, idempotency_key: str) -> str:
    """Set the Stripe customer's email. Returns the email Stripe now holds. Raises StripeCustomerError."""
    with _stripe_errors(what="change", unconfirmed="the address here is unchanged. Trying again is safe."):
        customer = _client().v1.customers.update(
            stripe_customer_id, params={"email": email}, options={"idempotency_key": idempotency_key}
        )
    return customer.get("email") or ""


def stripe_customer_credit(
    *, stripe_customer_id: str, amount: int, currency: str, description: str, idempotency_key: str, metadata: dict
) -> str:
    """Credit `amount` minor units on the customer's next invoice: a customer balance transaction with a negative
    amount (https://docs.stripe.com/api/customer_balance_transactions/create). Returns its id. Raises
    StripeCustomerError (`status` None or 5xx: the answer was lost, the credit may exist; ask again under the same
    key)."""
    params = {"amount": -amount, "currency": currency, "description": description, "metadata": metadata}
    unconfirmed = "it stays pending and is asked again under the same key, so it is applied once."
    with _stripe_errors(what="credit", unconfirmed=unconfirmed):
        created = _client().v1.customers.balance_transactions.create(
            stripe_customer_id, params=params, options={"idempotency_key": idempotency_key}
        )
    return created.id
