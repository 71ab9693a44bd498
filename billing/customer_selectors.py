"""Reads of one customer's money for the customer 360 page: revenue, the failed payment waiting for Stripe's retry
(with why it failed), goodwill credits, and the link to the customer in Stripe's dashboard. Each is one or two
queries, whatever the customer's history.

Invoices are dj-stripe's mirror (`djstripe.Invoice`, the Stripe object in `stripe_data`, kept current by the webhook
path: billing/stripe_webhook/ re-fetches every invoice it is told about). https://docs.stripe.com/api/invoices/object
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import BigIntegerField, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from djstripe import models as djstripe_models
from djstripe.settings import djstripe_settings

from .declines import KIND_LABELS
from .models import GoodwillCredit, PaymentFailure
from .stripe_objects import timestamp_to_datetime


@dataclass(frozen=True)
class Money:
    amount: int  # minor units
    currency: str

    def __str__(self) -> str:
        return f"{self.amount / 100:,.2f} {self.currency.upper()}"


@dataclass(frozen=True)
class FailedPayment:
    invoice_id: str
    amount_due: Money
    attempt_count: int
    next_payment_attempt: datetime | None  # None: Stripe will not retry
    hosted_invoice_url: str
    # Why it failed (billing/declines.py), from the failure's own row; "" when Stripe did not say.
    decline_kind: str = ""
    decline_code: str = ""

    @property
    def decline_label(self) -> str:
        return KIND_LABELS.get(self.decline_kind, self.decline_kind)


def lifetime_revenue(*, stripe_customer_id: str) -> list[Money]:
    """What the customer has paid over all their paid invoices, per currency (largest first)."""
    if not stripe_customer_id:
        return []
    rows = (
        djstripe_models.Invoice.objects.filter(customer_id=stripe_customer_id, stripe_data__status="paid")
        .values(currency=KT("stripe_data__currency"))
        .annotate(total=Sum(Cast(KT("stripe_data__amount_paid"), BigIntegerField())))
        .order_by("-total")
    )
    return [Money(amount=row["total"] or 0, currency=row["currency"] or "") for row in rows]


def failed_payment(*, stripe_customer_id: str) -> FailedPayment | None:
    """The newest open invoice with a failed attempt, and when Stripe retries it (`next_payment_attempt`)."""
    if not stripe_customer_id:
        return None
    invoices = djstripe_models.Invoice.objects.filter(
        customer_id=stripe_customer_id, stripe_data__status="open"
    ).order_by("-created", "-djstripe_id")
    for invoice in invoices[:10]:
        data = invoice.stripe_data
        if int(data.get("attempt_count") or 0) >= 1:
            decline = (
                PaymentFailure.objects.filter(invoice_id=invoice.id).values_list("decline_kind", "decline_code").first()
            ) or ("", "")
            return FailedPayment(
                invoice_id=invoice.id,
                amount_due=Money(amount=int(data.get("amount_due") or 0), currency=data.get("currency") or ""),
                attempt_count=int(data["attempt_count"]),
                next_payment_attempt=timestamp_to_datetime(data.get("next_payment_attempt")),
                hosted_invoice_url=data.get("hosted_invoice_url") or "",
                decline_kind=decline[0],
                decline_code=decline[1],
            )
    return None


def goodwill_credits(*, customer_id: int, latest: int = 5) -> list[GoodwillCredit]:
    """The customer's latest goodwill credits with who gave them (billing/support_actions.py)."""
    return list(
        GoodwillCredit.objects.filter(customer_id=customer_id)
        .select_related("granted_by")
        .order_by("-created_at")[:latest]
    )


def stripe_dashboard_url(*, stripe_customer_id: str) -> str:
    """The customer in Stripe's dashboard; test-mode objects live under /test/ (mode from dj-stripe's mirror, else
    from the configured mode)."""
    if not stripe_customer_id:
        return ""
    livemode = djstripe_models.Customer.objects.filter(id=stripe_customer_id).values_list("livemode", flat=True).first()
    if livemode is None:
        livemode = djstripe_settings.STRIPE_LIVE_MODE
    return f"https://dashboard.stripe.com/{'' if livemode else 'test/'}customers/{stripe_customer_id}"
