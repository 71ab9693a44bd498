"""Why a payment failed, in the three kinds the dunning emails word differently.

Stripe puts the reason on the failed payment intent's `last_payment_error`: `code` (an API error code such as
`card_declined`, `expired_card`, `incorrect_number`, `authentication_required`) and, for issuer declines,
`decline_code` (`insufficient_funds`, `lost_card`, ...). https://docs.stripe.com/declines/codes and
https://docs.stripe.com/error-codes. We keep the most specific of the two (the decline code when there is one) and
sort it into:

- "soft": the card is fine but this attempt failed (insufficient funds, a limit, the issuer unavailable): Stripe's
  next retry may well succeed, so the email says when it comes;
- "hard": the card cannot be charged again (expired, lost, stolen, wrong number, closed or blocked): retrying the
  same card will not help, so the email asks for a new card;
- "authentication_required": the bank wants the customer to confirm the payment (3D Secure); off-session retries
  cannot do that, so the email sends them to the invoice page to confirm it.

A code we do not know is "soft" (Stripe's own advice for a generic decline is to retry and, failing that, to contact
the bank), with no customer-facing reason: the email then speaks of a declined payment in general.
"""

from dataclasses import asdict, dataclass

SOFT, HARD, AUTHENTICATION_REQUIRED = "soft", "hard", "authentication_required"
KIND_LABELS = {SOFT: "Soft decline", HARD: "Hard decline", AUTHENTICATION_REQUIRED: "Authentication required", "": ""}

# Stripe's decline (and card error) codes after which the same card will not work again: a new card is needed.
HARD_CODES = frozenset(
    {
        "expired_card",
        "lost_card",
        "stolen_card",
        "pickup_card",
        "restricted_card",
        "incorrect_number",
        "invalid_number",
        "invalid_account",
        "incorrect_cvc",
        "invalid_cvc",
        "invalid_expiry_month",
        "invalid_expiry_year",
        "card_not_supported",
        "currency_not_supported",
        "new_account_information_available",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "stop_payment_order",
        "fraudulent",
        "merchant_blacklist",
        "security_violation",
        "transaction_not_allowed",
        "not_permitted",
        "do_not_try_again",
    }
)
AUTHENTICATION_CODES = frozenset({"authentication_required", "card_not_enrolled"})

# What the customer reads, for the codes worth naming (the others: no reason given, the generic wording).
CUSTOMER_REASONS = {
    "insufficient_funds": "the card did not have enough funds",
    "card_velocity_exceeded": "the card's spending limit was reached",
    "withdrawal_count_limit_exceeded": "the card's spending limit was reached",
    "processing_error": "the bank had a processing error",
    "issuer_not_available": "the bank could not be reached",
    "try_again_later": "the bank asked us to try again later",
    "expired_card": "the card has expired",
    "lost_card": "the card was reported lost",
    "stolen_card": "the card was reported stolen",
    "incorrect_number": "the card number is not correct",
    "invalid_number": "the card number is not correct",
    "incorrect_cvc": "the card's security code is not correct",
    "invalid_cvc": "the card's security code is not correct",
    "card_not_supported": "the card does not support this kind of payment",
    "currency_not_supported": "the card does not support this currency",
    "authentication_required": "your bank asks you to confirm the payment",
    "card_not_enrolled": "your bank asks you to confirm the payment",
}


@dataclass(frozen=True)
class Decline:
    kind: str  # SOFT, HARD, AUTHENTICATION_REQUIRED, or "" when nothing is known
    code: str  # Stripe's decline_code, else the error code
    reason: str  # the customer-facing words, "" when not worth naming

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


UNKNOWN = Decline(kind="", code="", reason="")


def decline_from_payment_error(error: dict | None, *, payment_intent_status: str = "") -> Decline:
    """The decline of a payment intent's `last_payment_error` (https://docs.stripe.com/api/errors): None or {} is
    unknown. A payment intent waiting for the customer (`requires_action`) needs authentication whatever the code."""
    error = error or {}
    code = str(error.get("decline_code") or error.get("code") or "")
    if not code and payment_intent_status != "requires_action":
        return UNKNOWN
    return decline_from_code(code, requires_action=payment_intent_status == "requires_action")


def decline_from_code(code: str, *, requires_action: bool = False) -> Decline:
    if requires_action or code in AUTHENTICATION_CODES:
        kind = AUTHENTICATION_REQUIRED
    elif code in HARD_CODES:
        kind = HARD
    else:
        kind = SOFT
    return Decline(kind=kind, code=code, reason=CUSTOMER_REASONS.get(code, ""))
