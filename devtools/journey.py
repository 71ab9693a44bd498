"""One customer's journey, as Stripe would play it: each step changes the Stripe stand-in's state (what the API
answers from then on) and returns the events Stripe would send for the change. `manage.py demo_journey` delivers them
to the webhook endpoint, the tests do the same.

The shapes follow tests/automations/test_stripe_order.py: a failed renewal leaves the invoice open with
`next_payment_attempt` and the subscription past_due; a recovery pays the invoice; a cancellation carries Stripe's
`cancellation_details` (https://docs.stripe.com/api/subscriptions/object#subscription_object-cancellation_details).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from devtools.fakes.stripe.objects import StripeObjectBuilder, stripe_event

DAY = 86400


@dataclass
class JourneyStep:
    title: str
    what: str
    play: Callable[[], list[dict]]  # changes the stand-in, returns Stripe's events


def journey_steps(stripe: StripeObjectBuilder, *, email: str, name: str) -> list[JourneyStep]:
    journey = _PaymentJourney(stripe, email=email, name=name)
    return [
        JourneyStep("Signup", f"{email} subscribes to Pro Server (EUR 14.99 a month) and pays", journey.signup),
        JourneyStep(
            "Payment failed", "the first renewal's payment fails; Stripe retries in 3 days", journey.payment_failed
        ),
        JourneyStep("Recovered", "Stripe's retry succeeds: the invoice is paid", journey.recovered),
        JourneyStep("Cancelled", "the customer cancels (feedback: too expensive)", journey.cancelled),
    ]


class _PaymentJourney:
    """The steps of one customer's journey, each changing Stripe's objects and returning the events Stripe sends."""

    def __init__(self, stripe: StripeObjectBuilder, *, email: str, name: str):
        self.stripe = stripe
        self.email = email
        self.name = name
        self.state: dict[str, str] = {}

    def signup(self) -> list[dict]:
        stripe, state = self.stripe, self.state
        product = stripe.add_product(name="Pro Server")
        price = stripe.add_price(product=product, unit_amount=1499)
        customer = stripe.add_customer(email=self.email, name=self.name)
        world = stripe.add_subscription(customer=customer, product=product, price=price, created=int(time.time()))
        first = stripe.add_invoice(
            subscription=world.subscription,
            status="paid",
            attempt_count=1,
            attempted=True,
            amount_paid=1499,
            billing_reason="subscription_create",
        )
        first = stripe.update(first["id"], amount_remaining=0)
        state.update(customer=customer["id"], subscription=world.subscription["id"])
        return [
            stripe_event("customer.created", customer),
            stripe_event("customer.subscription.created", stripe.get(state["subscription"])),
            stripe_event("invoice.paid", first),
        ]

    def payment_failed(self) -> list[dict]:
        stripe, state = self.stripe, self.state
        renewal = stripe.add_invoice(
            subscription=stripe.get(state["subscription"]),
            status="open",
            attempt_count=1,
            attempted=True,
            next_payment_attempt=int(time.time()) + 3 * DAY,
        )
        state["renewal"] = renewal["id"]
        stripe.update(state["subscription"], status="past_due", latest_invoice=renewal["id"])
        return [
            stripe_event("invoice.payment_failed", renewal),
            stripe_event("customer.subscription.updated", stripe.get(state["subscription"])),
        ]

    def recovered(self) -> list[dict]:
        stripe, state = self.stripe, self.state
        stripe.update(
            state["renewal"],
            status="paid",
            attempt_count=2,
            amount_paid=1499,
            amount_remaining=0,
            next_payment_attempt=None,
        )
        stripe.update(state["subscription"], status="active")
        return [
            stripe_event("invoice.paid", stripe.get(state["renewal"])),
            stripe_event("customer.subscription.updated", stripe.get(state["subscription"])),
        ]

    def cancelled(self) -> list[dict]:
        now = int(time.time())
        self.stripe.update(
            self.state["subscription"],
            status="canceled",
            canceled_at=now,
            ended_at=now,
            cancellation_details={
                "reason": "cancellation_requested",
                "feedback": "too_expensive",
                "comment": "Taking a break until the next season.",
            },
        )
        return [stripe_event("customer.subscription.deleted", self.stripe.get(self.state["subscription"]))]
