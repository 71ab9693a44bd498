"""Card-expiry warnings: the card a subscription renews with expires before the renewal, so the renewal would fail.

The daily sync (billing/sync.py) lists each subscription with its default payment method and its customer's invoice
default expanded (Stripe charges the subscription's own `default_payment_method` first, else the customer's
`invoice_settings.default_payment_method`: https://docs.stripe.com/api/subscriptions/object#subscription_object-default_payment_method)
and asks `card_expiry_due` about it: a card expires at the end of its expiry month
(https://docs.stripe.com/api/payment_methods/object#payment_method_object-card-exp_month), so it fails a renewal
after that. A subscription that will renew (current, no cancellation scheduled, collection not paused) whose renewal
is at most BILLING_CARD_EXPIRY_NOTICE_DAYS away gets one warning: `card_expiry_notice_record` writes a
`CardExpiryNotice`, unique per payment method and expiry (a second sync, a second subscription on the same card, a
race between two workers: one warning), and publishes `card.expiring`, which the shipped "Card expiring" rule turns
into an email with the card-update link.

With the default 30 days and a daily sync, a card that is the default when the renewal is more than 14 days away is
warned at least 14 days ahead (`MIN_NOTICE`): the first sync inside the window sees it. A card made the default later
than that (a new card that already expires before the renewal) is warned as soon as the sync sees it.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction

from customers import events

from .models import CardExpiryNotice, Subscription
from .services.facts import fact_record

MIN_NOTICE = timedelta(days=14)
RENEWING_STATUSES = frozenset({"active", "trialing", "past_due"})


@dataclass(frozen=True)
class ExpiringCard:
    payment_method_id: str
    exp_month: int
    exp_year: int
    brand: str
    last4: str
    renewal_at: datetime


def card_expires_at(*, exp_month: int, exp_year: int) -> datetime:
    """The first moment the card no longer works: the start of the month after its expiry month (UTC)."""
    return datetime(exp_year + exp_month // 12, exp_month % 12 + 1, 1, tzinfo=UTC)


def renewing_card(subscription: dict, customer: dict | None) -> dict | None:
    """The card payment method the subscription's next invoice will be charged to, when Stripe gave it expanded."""
    method = subscription.get("default_payment_method")
    if not method and customer:
        method = (customer.get("invoice_settings") or {}).get("default_payment_method")
    if isinstance(method, dict) and method.get("type") == "card" and isinstance(method.get("card"), dict):
        return method
    return None


def card_expiry_due(
    *, subscription: dict, customer: dict | None, renewal_at: datetime | None, now: datetime
) -> ExpiringCard | None:
    """The card to warn about now, or None (no card we can read, no renewal coming, expires after it, too early)."""
    if subscription.get("status") not in RENEWING_STATUSES or renewal_at is None or renewal_at <= now:
        return None
    if (
        subscription.get("cancel_at_period_end")
        or subscription.get("cancel_at")
        or subscription.get("pause_collection")
    ):
        return None  # no renewal to fail: it ends, or Stripe is not collecting
    if renewal_at - now > timedelta(days=settings.BILLING_CARD_EXPIRY_NOTICE_DAYS):
        return None
    method = renewing_card(subscription, customer)
    if method is None:
        return None
    card = method["card"]
    try:
        exp_month, exp_year = int(card["exp_month"]), int(card["exp_year"])
    except (KeyError, TypeError, ValueError):
        return None
    if card_expires_at(exp_month=exp_month, exp_year=exp_year) > renewal_at:
        return None
    return ExpiringCard(
        payment_method_id=method["id"],
        exp_month=exp_month,
        exp_year=exp_year,
        brand=str(card.get("display_brand") or card.get("brand") or ""),
        last4=str(card.get("last4") or ""),
        renewal_at=renewal_at,
    )


@transaction.atomic
def card_expiry_notice_record(*, subscription: Subscription, card: ExpiringCard, now: datetime) -> bool:
    """Warn once about this card and expiry: the notice row, a timeline entry and `card.expiring`. Returns whether
    this call warned (False: warned before)."""
    notice, created = CardExpiryNotice.objects.get_or_create(
        payment_method_id=card.payment_method_id,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        defaults={
            "customer": subscription.customer,
            "brand": card.brand,
            "last4": card.last4,
            "subscription_id": subscription.stripe_subscription_id,
            "renewal_at": card.renewal_at,
        },
    )
    if not created:
        return False
    label = f"{card.brand.title() or 'Card'} ending {card.last4}"
    fact_record(
        customer=subscription.customer,
        key=f"card:{card.payment_method_id}:{card.exp_year}-{card.exp_month:02d}:expiring",
        kind=events.CARD_EXPIRING,
        summary=f"{label} expires {card.exp_month:02d}/{card.exp_year}, before the renewal on "
        f"{card.renewal_at:%Y-%m-%d}: warned",
        domain_event=events.CARD_EXPIRING,
        payload={
            "subscription_id": subscription.stripe_subscription_id,
            "product_id": subscription.product_id,
            "product_name": subscription.product_name,
            "payment_method_id": card.payment_method_id,
            "brand": card.brand,
            "last4": card.last4,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "renewal_at": card.renewal_at.isoformat(),
            "card_expiry_notice_id": notice.pk,
        },
        object_type="stripe.payment_method",
        object_id_=card.payment_method_id,
        occurred_at=now,
    )
    return True
