"""The variables a template sees: the customer, their subscription, our links; and the sample contexts that
previews and the save-time checks render with (automations/rendering.py renders)."""

from datetime import datetime
from typing import Any

from django.conf import settings


def customer_context(customer) -> dict[str, Any]:
    name = (customer.name or "").strip()
    return {
        "name": name,
        "first_name": name.split()[0] if name else "there",
        "email": customer.email,
        "vip": bool(customer.vip_status),
        "lifecycle_stage": customer.lifecycle_stage,
        "promo_code": customer.promo_code,
        "discord_invite_link": customer.discord_invite_link_vip or customer.discord_invite_link_basic or "",
    }


SUBSCRIPTION_FIELDS = (
    "product_name",
    "status",
    "amount",
    "currency",
    "interval",
    "current_period_end",
    "cancel_at_period_end",
    "trial_end",
)


def subscription_context(*, customer, event_payload: dict[str, Any]) -> dict[str, Any] | None:
    """The customer's current subscription from billing, or what the triggering event said about it.

    Billing's selector is imported lazily: automations must keep working (from the event payload) when billing has
    no subscription for the customer yet, or in a deployment without billing's tables.
    """
    subscription = None
    try:
        from billing.selectors import subscription_current_for_customer
    except ImportError:
        subscription_current_for_customer = None
    if subscription_current_for_customer is not None:
        subscription = subscription_current_for_customer(customer=customer)
    if subscription is not None:
        values = {field: getattr(subscription, field, None) for field in SUBSCRIPTION_FIELDS}
        for field in ("current_period_end", "trial_end"):
            if isinstance(values[field], datetime):
                values[field] = values[field].isoformat()
        return values
    if event_payload.get("product_name") or event_payload.get("subscription_id"):
        return {field: event_payload.get(field) for field in SUBSCRIPTION_FIELDS}
    return None


def payment_context(event_payload: dict[str, Any] | None) -> dict[str, Any]:
    """Why the payment failed and when Stripe retries, from the payment.failed payload the enrollment follows (its
    latest failure): `decline.kind` is "soft", "hard", "authentication_required" or "" (not known: another trigger,
    or Stripe did not say), `decline.code` Stripe's code, `decline.reason` the customer-facing words;
    `next_retry_at` Stripe's next attempt (None: no more retries). billing/declines.py decides the kinds."""
    payload = event_payload or {}
    decline = payload.get("decline") if isinstance(payload.get("decline"), dict) else {}
    return {
        "decline": {key: str(decline.get(key) or "") for key in ("kind", "code", "reason")},
        "next_retry_at": payload.get("next_payment_attempt"),
    }


def links_context() -> dict[str, str]:
    return {
        "site_url": settings.SITE_URL,  # this back-office (where unsubscribe links point)
        "website_url": settings.AUTOMATIONS_WEBSITE_URL,  # the public website: plans, sign-up
        "discord_url": settings.AUTOMATIONS_DISCORD_URL,
        "panel_url": settings.AUTOMATIONS_PANEL_URL,
        "billing_url": settings.AUTOMATIONS_BILLING_URL,
    }


def sample_context() -> dict[str, Any]:
    """A customer and every documented event field, for previews without a customer and for the save-time check."""
    return {
        "customer": {
            "name": "Alex Builder",
            "first_name": "Alex",
            "email": "alex@example.com",
            "vip": False,
            "lifecycle_stage": "active",
            "promo_code": "",
            "discord_invite_link": "",
        },
        "subscription": {
            "product_name": "Modded Server 8 GB",
            "status": "active",
            "amount": 1999,
            "currency": "usd",
            "interval": "month",
            "current_period_end": "2026-12-01T00:00:00+00:00",
            "cancel_at_period_end": False,
            "trial_end": None,
        },
        "event": {
            "subscription_id": "sub_sample",
            "product_id": "prod_sample",
            "product_name": "Modded Server 8 GB",
            "amount": 1999,
            "amount_due": 1999,
            "currency": "usd",
            "interval": "month",
            "attempt_count": 1,
            "next_payment_attempt": "2026-12-04T00:00:00+00:00",
            "hosted_invoice_url": "https://invoice.stripe.com/i/sample",
            "cancellation_reason": "",
            "feedback": "",
            "comment": "",
            "trial_end": None,
            # card.expiring (billing/card_expiry.py)
            "brand": "visa",
            "last4": "4242",
            "exp_month": 11,
            "exp_year": 2026,
            "renewal_at": "2026-12-01T00:00:00+00:00",
        },
        "unsubscribe_url": f"{settings.SITE_URL}/email/unsubscribe/sample",
        "preferences_url": f"{settings.SITE_URL}/email/preferences/sample",
        "card_update_url": f"{settings.SITE_URL}/billing/card-update/sample",
        "decline": {"kind": "soft", "code": "insufficient_funds", "reason": "the card did not have enough funds"},
        "next_retry_at": "2026-12-04T00:00:00+00:00",
        **links_context(),
    }


def sample_contexts() -> list[dict[str, Any]]:
    """Customers unlike each other, for the save-time check: a template that only works for Alex is caught."""
    base = sample_context()
    vip = {
        **base,
        "customer": {
            "name": "Zoë O'Brien-Łukasiewicz",
            "first_name": "Zoë",
            "email": "zoe.obrien+vip@example.org",
            "vip": True,
            "lifecycle_stage": "at_risk",
            "promo_code": "COMEBACK50",
            "discord_invite_link": "https://discord.gg/sample-vip",
        },
        "subscription": {
            **base["subscription"],
            "product_name": "Vanilla Server 4 GB",
            "status": "past_due",
            "amount": 1500,
            "currency": "jpy",
            "interval": "year",
            "cancel_at_period_end": True,
            "trial_end": "2026-11-20T00:00:00+00:00",
        },
        "event": {
            **base["event"],
            "amount": 1500,
            "amount_due": 1500,
            "currency": "jpy",
            "attempt_count": 3,
            "next_payment_attempt": None,
            "cancellation_reason": "too_expensive",
            "feedback": "too_expensive",
            "comment": "Ping was high <b>at night</b>",
        },
        "unsubscribe_url": f"{settings.SITE_URL}/email/unsubscribe/sample-vip",
        "decline": {"kind": "hard", "code": "expired_card", "reason": "the card has expired"},
        "next_retry_at": None,
    }
    unnamed = {
        **base,
        "customer": {
            "name": "",
            "first_name": "there",
            "email": "player42@example.net",
            "vip": False,
            "lifecycle_stage": "churned",
            "promo_code": "",
            "discord_invite_link": "",
        },
        "subscription": None,
        "event": {**dict.fromkeys(base["event"]), "cancellation_reason": "", "feedback": "", "comment": ""},
        "unsubscribe_url": f"{settings.SITE_URL}/email/unsubscribe/sample-unnamed",
        "card_update_url": "",  # a customer without a Stripe customer gets no link
        **payment_context(None),
    }
    confirm = {**base, "decline": {"kind": "authentication_required", "code": "authentication_required", "reason": ""}}
    return [base, vip, unnamed, confirm]
