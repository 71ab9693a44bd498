"""Payment facts from a subscription invoice: a failed attempt, a recovery, an ordinary payment, and the first
renewal that ends Onboarding."""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from customers import events
from customers.lifecycle import Stage, renewal_ends_onboarding
from customers.models import Customer, TimelineEvent, TimelineSource
from customers.services import customer_move_stage

from ..declines import CUSTOMER_REASONS, Decline
from ..models import ENDED_STATUSES, Subscription
from ..recoveries import payment_recovery_record
from ..stripe_objects import datetime_to_iso, invoice_subscription_id, timestamp_to_datetime
from .facts import fact_record
from .payment_failures import payment_failure_record, payment_failure_recovered

logger = logging.getLogger(__name__)


@transaction.atomic
def invoice_apply_stripe_state(
    *,
    stripe_invoice: dict,
    occurred_at: datetime | None = None,
    record_plain_payments: bool = True,
    decline: Decline | None = None,
) -> list[str]:
    """Record payment facts from the current state of a subscription invoice. Returns the facts recorded.

    Mapping: https://docs.stripe.com/api/invoices/object. An open invoice with attempt_count >= 1 has had a failed
    attempt (`next_payment_attempt` is when Stripe retries, null when it will not) while its subscription can still
    be saved (not canceled or incomplete_expired: after the end it is no failure); a paid invoice that failed
    before (attempt_count > 1, or a failure we recorded) is a recovery. Invoices of non-ModReady subscriptions, and
    invoices without a subscription, are ignored. The daily sync passes record_plain_payments=False: it looks for
    failures and recoveries only, not for every ordinary payment. `decline`: why the attempt failed, when the caller
    asked Stripe (the webhook path does; the daily sync, healing a missed failure, does not).
    """
    sub_id = invoice_subscription_id(stripe_invoice)
    subscription = _subscription_locked(sub_id) if sub_id else None
    if subscription is None:
        return []
    status = stripe_invoice.get("status")
    attempts = int(stripe_invoice.get("attempt_count") or 0)
    occurred_at = occurred_at or timezone.now()
    if status == "open" and attempts >= 1 and subscription.status in ENDED_STATUSES:
        # Stripe leaves the last failed invoice open when it cancels the subscription after its retries: there is
        # nothing left to save, so it is no payment failure (no dunning, no at_risk). The cancellation is the fact.
        logger.info("Invoice %s: open after subscription %s ended; not a payment failure", stripe_invoice["id"], sub_id)
        return []
    if status == "open" and attempts >= 1:
        _invoice_payment_failed_fact(
            subscription, stripe_invoice, attempts=attempts, occurred_at=occurred_at, decline=decline
        )
        return ["payment-failed"]
    if status == "paid":
        return _invoice_paid_facts(
            subscription,
            stripe_invoice,
            attempts=attempts,
            occurred_at=occurred_at,
            record_plain_payments=record_plain_payments,
        )
    return []


def _subscription_locked(stripe_subscription_id: str) -> Subscription | None:
    # Locked: the subscription's status decides whether an open invoice is still a failure, and a cancellation
    # applied concurrently must either come first (and be seen) or wait for this to commit.
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(stripe_subscription_id=stripe_subscription_id)
        .first()
    )


def _invoice_payment_failed_fact(
    subscription: Subscription, stripe_invoice: dict, *, attempts: int, occurred_at: datetime, decline: Decline | None
) -> None:
    invoice_id = stripe_invoice["id"]
    next_attempt = timestamp_to_datetime(stripe_invoice.get("next_payment_attempt"))
    amount_due = int(stripe_invoice.get("amount_due") or 0)
    currency = (stripe_invoice.get("currency") or "").lower()
    failure = payment_failure_record(
        customer=subscription.customer,
        invoice_id=invoice_id,
        subscription_id=subscription.stripe_subscription_id,
        attempt_count=attempts,
        occurred_at=occurred_at,
        next_payment_attempt=next_attempt,
        amount_due=amount_due,
        currency=currency,
        hosted_invoice_url=stripe_invoice.get("hosted_invoice_url") or "",
        decline=decline,
    )
    # The row's decline: this attempt's, or the last one known when this attempt came without one (the daily sync).
    decline = Decline(
        kind=failure.decline_kind,
        code=failure.decline_code,
        reason=CUSTOMER_REASONS.get(failure.decline_code, "") if failure.decline_kind else "",
    )
    retry = f"; next retry {next_attempt:%Y-%m-%d %H:%M} UTC" if next_attempt else "; no further retries"
    why = f" ({decline.code})" if decline.code else ""
    fact_record(
        customer=subscription.customer,
        key=f"invoice:{invoice_id}:payment-failed:{attempts}",
        kind="payment.failed",
        summary=f"Payment of {amount_due / 100:.2f} {currency.upper()} failed{why} (attempt {attempts}){retry}",
        domain_event=events.PAYMENT_FAILED,
        payload={
            "invoice_id": invoice_id,
            "subscription_id": subscription.stripe_subscription_id,
            "product_id": subscription.product_id,
            "attempt_count": attempts,
            "next_payment_attempt": datetime_to_iso(next_attempt),
            "amount_due": amount_due,
            "currency": currency,
            "hosted_invoice_url": stripe_invoice.get("hosted_invoice_url") or "",
            # billing/declines.py: what the dunning emails' wording follows.
            "decline": decline.as_dict(),
            # The dunning holdout (services/payment_failures.py): no dunning email for this invoice.
            "dunning_holdout": failure.dunning_group == "holdout",
        },
        to_stage=Stage.AT_RISK,
        object_type="stripe.invoice",
        object_id_=invoice_id,
        occurred_at=occurred_at,
    )


def _invoice_paid_facts(
    subscription: Subscription,
    stripe_invoice: dict,
    *,
    attempts: int,
    occurred_at: datetime,
    record_plain_payments: bool,
) -> list[str]:
    """A paid invoice: a recovery when it failed before, else an ordinary payment; then maybe the end of Onboarding."""
    invoice_id = stripe_invoice["id"]
    failed_before = (
        attempts > 1
        or TimelineEvent.objects.filter(
            source=TimelineSource.STRIPE, object_id=invoice_id, kind="payment.failed"
        ).exists()
    )
    paid_at = timestamp_to_datetime((stripe_invoice.get("status_transitions") or {}).get("paid_at")) or occurred_at
    common = {"object_type": "stripe.invoice", "object_id_": invoice_id, "occurred_at": paid_at}
    payload = {
        "invoice_id": invoice_id,
        "subscription_id": subscription.stripe_subscription_id,
        "product_id": subscription.product_id,
    }
    customer = subscription.customer
    facts: list[str] = []
    if failed_before:
        fact_record(
            customer=customer,
            key=f"invoice:{invoice_id}:payment-recovered",
            kind="payment.recovered",
            summary="Payment recovered after a failure",
            domain_event=events.PAYMENT_RECOVERED,
            payload=payload,
            to_stage=Stage.ACTIVE,
            **common,
        )
        payment_recovery_record(customer_id=customer.pk, invoice_id=invoice_id)
        payment_failure_recovered(invoice_id=invoice_id, recovered_at=paid_at)
        facts.append("payment-recovered")
    elif record_plain_payments:
        amount_paid = int(stripe_invoice.get("amount_paid") or 0)
        currency = (stripe_invoice.get("currency") or "").upper()
        fact_record(
            customer=customer,
            key=f"invoice:{invoice_id}:paid",
            kind="payment.succeeded",
            summary=f"Paid {amount_paid / 100:.2f} {currency}",
            domain_event=events.PAYMENT_SUCCEEDED,
            payload={**payload, "amount_paid": amount_paid, "currency": currency.lower()},
            **common,
        )
        facts.append("payment-succeeded")
    if _onboarding_ends_with_renewal(customer, stripe_invoice, paid_at=paid_at):
        facts.append("onboarding-done")
    return facts


def _onboarding_ends_with_renewal(customer: Customer, stripe_invoice: dict, *, paid_at: datetime) -> bool:
    """The Onboarding -> Active rule's first path (customers/lifecycle.py): the first renewal is paid."""
    if not renewal_ends_onboarding(
        stage=customer.lifecycle_stage,
        onboarding_since=customer.stage_changed_at,
        billing_reason=stripe_invoice.get("billing_reason") or "",
        paid_at=paid_at,
    ):
        return False
    return bool(
        customer_move_stage(
            customer=customer,
            to_stage=Stage.ACTIVE,
            from_stage=Stage.ONBOARDING,
            cause="first renewal paid",
            occurred_at=paid_at,
            source_key=f"invoice:{stripe_invoice['id']}:onboarding-done",
        )
    )
