"""The two writes the cancellation flow makes at Stripe, each with our own Idempotency-Key:

- POST /v1/subscriptions/{id}: pause_collection, discounts, items (a price change), cancel_at_period_end with
  cancellation_details (https://docs.stripe.com/api/subscriptions/update);
- POST /v1/coupons: the save offer's coupon, under a deterministic id (https://docs.stripe.com/api/coupons/create).

stripe-python's own retry (PORTAL-like: one retry on a network error, a 409, 429 or 5xx) repeats the request with the
same key and the same body; a caller that retries later (billing/retention/changes.py) sends the stored parameters
again under the same key. Stripe remembers a key for 24 hours (https://docs.stripe.com/api/idempotent_requests).
"""

import stripe
from django.conf import settings

from ..stripe_api import api_key

# (connect, read) seconds: a customer is waiting on the page.
CHANGE_TIMEOUT = (4, 15)
CHANGE_RETRIES = 1
# The transport for these calls; None means requests with CHANGE_TIMEOUT. The demo's in-process Stripe
# (devtools/fakes/stripe/in_process.py) puts its adapter here while it plays.
http_client_override = None


class StripeChangeError(Exception):
    """Stripe refused the change, or its answer was lost. `outcome_unknown`: no answer, a 409 (the same key still in
    progress) or a 5xx, so Stripe may have acted; only the same request under the same key may be sent again."""

    def __init__(self, message: str, *, status: int | None = None, code: str = ""):
        super().__init__(message)
        self.status, self.code = status, code

    @property
    def outcome_unknown(self) -> bool:
        return self.status is None or self.status == 409 or self.status == 429 or self.status >= 500


def _client() -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key(),
        stripe_version=settings.STRIPE_API_VERSION,
        base_addresses={"api": stripe.api_base},  # dj-stripe sets it from STRIPE_API_HOST (the fakes in tests)
        max_network_retries=CHANGE_RETRIES,
        http_client=http_client_override or stripe.RequestsClient(timeout=CHANGE_TIMEOUT),
    )


def _error(exc: stripe.StripeError, what: str) -> StripeChangeError:
    status = exc.http_status
    if isinstance(exc, stripe.APIConnectionError):
        status = None
    return StripeChangeError(
        f"Stripe did not {what} ({type(exc).__name__}: {exc.user_message or ''})".strip(),
        status=status,
        code=getattr(exc, "code", "") or "",
    )


def subscription_update_send(*, subscription_id: str, params: dict, idempotency_key: str) -> dict:
    """Send one subscription update; returns Stripe's subscription. Raises StripeChangeError."""
    try:
        subscription = _client().v1.subscriptions.update(
            subscription_id, params=params, options={"idempotency_key": idempotency_key}
        )
    except stripe.StripeError as exc:
        raise _error(exc, "change the subscription") from exc
    return subscription.to_dict()


def coupon_ensure(*, coupon_id: str, percent_off: int, months: int) -> str:
    """The coupon `coupon_id` (percent_off for `months` months, `duration=repeating`), created if Stripe does not have
    it yet. The id names its terms, so an existing coupon of that id is the one we want. Raises StripeChangeError."""
    params = {
        "id": coupon_id,
        "percent_off": percent_off,
        "duration": "repeating",
        "duration_in_months": months,
        "name": f"{percent_off}% off for {months} month{'s' if months != 1 else ''}",
    }
    try:
        _client().v1.coupons.create(params=params, options={"idempotency_key": f"coupon:{coupon_id}"})
    except stripe.StripeError as exc:
        if getattr(exc, "code", "") == "resource_already_exists":
            return coupon_id
        raise _error(exc, "create the coupon") from exc
    return coupon_id
