"""The Stripe side of the demo history: products, customers, subscriptions and invoices as Stripe would hold them at
each moment, and the events Stripe would send about them.

Objects are made by the one Stripe object builder (devtools/fakes/stripe/objects.py) into a FakeStripe that seed_demo
answers stripe-python from in-process (devtools/fakes/stripe/in_process.py). Each change is made to the object held
there (what a re-fetch answers from then on) and returns the event Stripe sends for it, with the change's time as the
event's `created`. Object and event shapes: https://docs.stripe.com/api/subscriptions/object,
https://docs.stripe.com/api/invoices/object, https://docs.stripe.com/api/events/object; cancellation details:
https://docs.stripe.com/api/subscriptions/object#subscription_object-cancellation_details.
"""

import copy
from datetime import datetime, timedelta

from devtools.fakes.stripe.objects import stripe_event
from devtools.fakes.stripe.server import FakeStripe

DAY = 86400


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


class StripeWorld:
    def __init__(self, stripe: FakeStripe):
        self.stripe = stripe
        self.counter = 0
        self.customers = 0
        self.failures = 0

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_demo{self.counter:07d}"

    def event(self, event_type: str, obj: dict, at: datetime, previous: dict | None = None) -> dict:
        return stripe_event(event_type, obj, event_id=self._id("evt"), created=ts(at), previous_attributes=previous)

    # catalogue --------------------------------------------------------------------------------------------------
    def product(self, *, name: str, amount: int, interval: str = "month") -> dict:
        product = self.stripe.add_product(name=name, id=self._id("prod"), created=1700000000)
        price = self.stripe.add_price(product=product, unit_amount=amount, interval=interval, id=self._id("price"))
        product["default_price"] = price["id"]
        return price

    # a customer's billing ---------------------------------------------------------------------------------------
    def customer(self, *, email: str, name: str, at: datetime) -> dict:
        customer = self.stripe.add_customer(
            email=email, name=name, id=self._id("cus"), created=ts(at), invoice_prefix=self._id("INV")[-8:]
        )
        # Every customer pays by card; every fourth card expires at the end of the month that holds the day three
        # weeks after sign-up: always before the second monthly renewal, whatever day of the month `at` is, so the
        # daily card check (billing/card_expiry.py) has renewals to warn about on any date the demo is played.
        self.customers += 1
        expires = at + timedelta(days=21 if self.customers % 4 == 0 else 900)
        brand, last4 = CARDS[self.customers % len(CARDS)]
        self.stripe.add_card(
            customer=customer,
            exp_month=expires.month,
            exp_year=expires.year,
            brand=brand,
            last4=last4,
            id=self._id("pm"),
            created=ts(at),
        )
        return customer

    def subscribe(self, *, customer: dict, price: dict, at: datetime, trial_days: int = 0) -> tuple[dict, dict]:
        """customer.subscription.created: active from `at`, or trialing for `trial_days`."""
        start = ts(at)
        period_days = trial_days or _period_days(price)
        period_end = start + period_days * DAY
        trial = {"trial_start": start, "trial_end": period_end} if trial_days else {}
        world = self.stripe.add_subscription(
            customer=customer,
            price=price,
            status="trialing" if trial_days else "active",
            created=start,
            period_days=period_days,
            id=self._id("sub"),
            billing_cycle_anchor=period_end if trial_days else start,
            **trial,
        )
        return world.subscription, self.event("customer.subscription.created", world.subscription, at)

    def update(self, sub: dict, at: datetime, **fields) -> dict:
        """customer.subscription.updated with Stripe's previous_attributes."""
        previous = {key: copy.deepcopy(sub.get(key)) for key in fields}
        sub.update(fields)
        return self.event("customer.subscription.updated", sub, at, previous=previous)

    def new_period(self, sub: dict, at: datetime) -> dict:
        """The next billing period starts (a renewal, or a trial's end): the item's period moves on."""
        item = sub["items"]["data"][0]
        previous = {"items": copy.deepcopy(sub["items"])}
        start = ts(at)
        item.update(current_period_start=start, current_period_end=start + _period_days(item["price"]) * DAY)
        fields = {"status": "active"}
        if sub["status"] != "active":
            previous["status"] = sub["status"]
        sub.update(fields)
        return self.event("customer.subscription.updated", sub, at, previous=previous)

    def invoice(self, sub: dict, at: datetime, *, billing_reason: str) -> dict:
        price = sub["items"]["data"][0]["price"]
        invoice_id = self._id("in")
        customer = self.stripe.get(sub["customer"])
        invoice = self.stripe.add_invoice(
            subscription=sub,
            id=invoice_id,
            customer_email=customer["email"],
            customer_name=customer["name"],
            subtotal=price["unit_amount"],
            total=price["unit_amount"],
            billing_reason=billing_reason,
            created=ts(at),
            period_start=ts(at),
            period_end=ts(at),
            hosted_invoice_url=f"https://invoice.stripe.com/i/acct_1ModReadyDemo/{invoice_id}",
            number=f"{customer['invoice_prefix']}-{self.counter:04d}",
        )
        invoice["status_transitions"]["finalized_at"] = ts(at)
        sub["latest_invoice"] = invoice_id
        return invoice

    def pay(self, invoice: dict, at: datetime) -> dict:
        """invoice.paid (https://docs.stripe.com/api/events/types#event_types-invoice.paid)."""
        invoice.update(
            status="paid",
            attempted=True,
            attempt_count=invoice["attempt_count"] + 1,
            amount_paid=invoice["amount_due"],
            amount_remaining=0,
            next_payment_attempt=None,
        )
        invoice["status_transitions"]["paid_at"] = ts(at)
        return self.event("invoice.paid", invoice, at)

    def fail(self, invoice: dict, at: datetime, *, retry_in_days: int | None) -> dict:
        """invoice.payment_failed; Stripe's next retry, or none after the last. The failed attempt's payment intent
        carries a decline of each kind in turn (billing/declines.py)."""
        invoice.update(
            status="open",
            attempted=True,
            attempt_count=invoice["attempt_count"] + 1,
            next_payment_attempt=ts(at) + retry_in_days * DAY if retry_in_days else None,
        )
        self.failures += 1
        self.stripe.add_failed_payment(invoice=invoice, created=ts(at), **DECLINES[self.failures % len(DECLINES)])
        return self.event("invoice.payment_failed", invoice, at)

    def cancel(self, sub: dict, at: datetime, *, reason: str, feedback: str | None, comment: str | None) -> dict:
        """customer.subscription.deleted with Stripe's cancellation_details."""
        details = {"reason": reason, "feedback": feedback, "comment": comment}
        sub.update(
            status="canceled",
            canceled_at=sub.get("canceled_at") or ts(at),
            ended_at=ts(at),
            cancellation_details=details,
            cancel_at_period_end=False,
        )
        return self.event("customer.subscription.deleted", sub, at)

    def schedule_cancel(self, sub: dict, at: datetime, *, feedback: str | None, comment: str | None) -> dict:
        """The customer cancels in the portal: it ends at the period's end (cancel_at_period_end)."""
        period_end = sub["items"]["data"][0]["current_period_end"]
        return self.update(
            sub,
            at,
            cancel_at_period_end=True,
            cancel_at=period_end,
            canceled_at=ts(at),
            cancellation_details={"reason": "cancellation_requested", "feedback": feedback, "comment": comment},
        )


# The demo's declines, one of each kind in turn: soft, hard, authentication required.
DECLINES = [
    {"decline_code": "insufficient_funds"},
    {"code": "expired_card"},
    {"decline_code": "authentication_required"},
    {"decline_code": "lost_card"},
    {"decline_code": "card_velocity_exceeded"},
]
CARDS = [("visa", "4242"), ("mastercard", "4444"), ("amex", "8431"), ("visa", "1881")]


def _period_days(price: dict) -> int:
    return 365 if price["recurring"]["interval"] == "year" else 30
