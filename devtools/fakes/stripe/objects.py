"""The one Stripe object builder: Stripe objects from the JSON fixtures in fixtures/ (API version 2025-03-31.basil
shape: billing period on subscription items, an invoice's subscription under parent.subscription_details.subscription),
Stripe events, and the webhook signing helper.

Its stores: the fake Stripe API of the tests and benchmarks (devtools/fakes/stripe/server.py), the local run's stand-in
(standin.py, which `manage.py demo_journey` fills over HTTP through StandInClient), and through the fake, the
in-process Stripe of seed_demo (in_process.py, filled by devtools/demo/stripe_world.py):

    with FakeStripe() as fake:                          # then point stripe-python at fake.url (see use_fake_stripe)
        world = fake.add_subscription(email="a@example.com", product=fake.add_product(modready=True))
        event = stripe_event("customer.subscription.created", world.subscription)
        body, header = signed_request(event, secret="whsec_...")

Every builder takes extra fields that override what it would set (an id, a `created` time, ...).
"""

import copy
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
API_VERSION = "2025-03-31.basil"
RESOURCES = {
    "customer": "customers",
    "subscription": "subscriptions",
    "product": "products",
    "price": "prices",
    "invoice": "invoices",
    "charge": "charges",
    "dispute": "disputes",
    "payment_intent": "payment_intents",
    "payment_method": "payment_methods",
    "invoice_payment": "invoice_payments",
    "customer_balance_transaction": "customer_balance_transactions",
    "checkout.session": "checkout_sessions",
    "event": "events",
}
PREFIXES = {
    "cus_": "customers",
    "sub_": "subscriptions",
    "prod_": "products",
    "price_": "prices",
    "in_": "invoices",
    "ch_": "charges",
    "dp_": "disputes",
    "pi_": "payment_intents",
    "pm_": "payment_methods",
    "inpay_": "invoice_payments",
    "cbtxn_": "customer_balance_transactions",
    "cs_": "checkout_sessions",
    "evt_": "events",
}
_counter = itertools.count(1)


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def new_id(prefix: str) -> str:
    return f"{prefix}{next(_counter):06d}{int(time.time() * 1000) % 10**8:08d}"


# --- signing ---------------------------------------------------------------------------------------------------------


def signature_header(body: bytes, *secrets: str, timestamp: int | None = None) -> str:
    """Stripe-Signature for `body`: t=<unix>, then one v1 per secret (several during a secret rotation).
    https://docs.stripe.com/webhooks#verify-manually"""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + body
    parts = [f"t={timestamp}"]
    parts += [f"v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}" for secret in secrets]
    return ",".join(parts)


def stripe_event(
    event_type: str,
    obj: dict,
    *,
    event_id: str | None = None,
    created: int | None = None,
    previous_attributes: dict | None = None,
) -> dict:
    """An event as Stripe sends it (https://docs.stripe.com/api/events/object)."""
    event = fixture("event")
    event.update(id=event_id or new_id("evt_"), type=event_type, created=created or int(time.time()))
    event["data"] = {"object": copy.deepcopy(obj)}
    if previous_attributes is not None:
        event["data"]["previous_attributes"] = previous_attributes
    return event


def signed_request(event: dict, *, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    body = json.dumps(event).encode()
    return body, signature_header(body, secret, timestamp=timestamp)


# --- the world -------------------------------------------------------------------------------------------------------


@dataclass
class SubscriptionWorld:
    customer: dict
    product: dict
    price: dict
    subscription: dict


class StripeObjectBuilder:
    """Builds Stripe objects from the fixtures and stores them with `put` (the fake's own store, or a running stand-in
    over HTTP: devtools.fakes.stripe.standin.StandInClient)."""

    line_items: dict[str, list[dict]]

    def put(self, obj: dict) -> dict:
        raise NotImplementedError

    def api_versions(self) -> list[tuple[str, str, str]]:
        """(method, path, Stripe-Version header) of every request so far, "" where the header was missing.

        Real Stripe answers a request without the header on the account's default API version, and one with another
        version in that version's shapes: a caller that does not pin STRIPE_API_VERSION reads objects it does not
        expect. https://docs.stripe.com/api/versioning"""
        with self.lock:
            return [(r.method, r.path, r.header("stripe-version")) for r in self.requests]

    def get(self, object_id: str) -> dict:
        raise NotImplementedError

    def update(self, object_id: str, **fields: Any) -> dict:
        obj = self.get(object_id)
        obj.update(fields)
        return self.put(obj)

    def add_customer(self, *, email: str, name: str = "Player One", **fields: Any) -> dict:
        customer = fixture("customer")
        customer.update(
            {"id": new_id("cus_"), "email": email, "name": name, "created": int(time.time()) - 3600, **fields}
        )
        return self.put(customer)

    def add_product(self, *, name: str = "ModReady Server", modready: bool = True, **fields: Any) -> dict:
        product = fixture("product")
        product.update(
            {"id": new_id("prod_"), "name": name, "metadata": {"modready": "true"} if modready else {}, **fields}
        )
        return self.put(product)

    def add_price(self, *, product: dict, unit_amount: int = 1499, interval: str = "month", **fields: Any) -> dict:
        price = fixture("price")
        price.update({"id": new_id("price_"), "product": product["id"], "unit_amount": unit_amount, **fields})
        price["unit_amount_decimal"] = str(unit_amount)
        price["recurring"]["interval"] = interval
        return self.put(price)

    def add_subscription(
        self,
        *,
        email: str = "",
        customer: dict | None = None,
        product: dict | None = None,
        price: dict | None = None,
        status: str = "active",
        created: int | None = None,
        period_days: int = 30,
        **fields: Any,
    ) -> SubscriptionWorld:
        """A subscription in its first period (`period_days` long) from `created`; `fields` override the rest (the
        demo's history sets its own id, billing_cycle_anchor and trial)."""
        customer = customer or self.add_customer(email=email or f"{new_id('player')}@example.com")
        product = product or (self.get(price["product"]) if price else self.add_product())
        price = price or self.add_price(product=product)
        created = created or int(time.time()) - 600
        subscription = fixture("subscription")
        sub_id = fields.pop("id", None) or new_id("sub_")
        item = subscription["items"]["data"][0]
        item.update(
            id=new_id("si_"),
            subscription=sub_id,
            price=copy.deepcopy(price),
            created=created,
            current_period_start=created,
            current_period_end=created + period_days * 86400,
        )
        subscription["items"]["url"] = f"/v1/subscription_items?subscription={sub_id}"
        subscription.update(
            {
                "id": sub_id,
                "customer": customer["id"],
                "status": status,
                "created": created,
                "start_date": created,
                "billing_cycle_anchor": created,
                "currency": price["currency"],
                **fields,
            }
        )
        if status == "trialing" and not subscription.get("trial_end"):
            subscription.update(trial_start=created, trial_end=created + 14 * 86400)
        self.put(subscription)
        return SubscriptionWorld(customer=customer, product=product, price=price, subscription=subscription)

    def add_invoice(self, *, subscription: dict, **fields: Any) -> dict:
        invoice = fixture("invoice")
        invoice_id = fields.pop("id", None) or new_id("in_")
        price = subscription["items"]["data"][0]["price"]
        invoice.update(
            {
                "id": invoice_id,
                "customer": subscription["customer"],
                "amount_due": price["unit_amount"],
                "amount_remaining": price["unit_amount"],
                "currency": price["currency"],
                "created": int(time.time()) - 60,
                "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_1ModReadyFake000/test_{invoice_id}",
                **fields,
            }
        )
        invoice["parent"]["subscription_details"]["subscription"] = subscription["id"]
        invoice["lines"]["url"] = f"/v1/invoices/{invoice_id}/lines"
        return self.put(invoice)

    def add_card(
        self,
        *,
        customer: dict,
        exp_month: int,
        exp_year: int,
        brand: str = "visa",
        last4: str = "4242",
        default=True,
        **fields: Any,
    ) -> dict:
        """A card payment method attached to the customer, by default as its invoice default
        (https://docs.stripe.com/api/payment_methods/object, https://docs.stripe.com/api/customers/object#customer_object-invoice_settings-default_payment_method)."""
        method = fixture("payment_method")
        # `fields` may name the id and created (the demo's own ids and times); these are only the defaults.
        method.update({"id": new_id("pm_"), "customer": customer["id"], "created": int(time.time()) - 86400, **fields})
        method["card"].update(brand=brand, display_brand=brand, last4=last4, exp_month=exp_month, exp_year=exp_year)
        self.put(method)
        if default:
            settings = dict(customer.get("invoice_settings") or {}, default_payment_method=method["id"])
            customer["invoice_settings"] = settings
            self.update(customer["id"], invoice_settings=settings)
        return method

    def add_failed_payment(
        self,
        *,
        invoice: dict,
        code: str = "card_declined",
        decline_code: str | None = None,
        requires_action=False,
        created: int | None = None,
    ) -> dict:
        """A failed attempt at the invoice: a payment intent whose last_payment_error says why
        (https://docs.stripe.com/api/payment_intents/object#payment_intent_object-last_payment_error) and the
        invoice's payment record that points at it (https://docs.stripe.com/api/invoice-payment/object)."""
        intent_id = new_id("pi_")
        error = {
            "type": "card_error",
            "code": code,
            "decline_code": decline_code,
            "message": "Your card was declined.",
            "payment_intent": {"id": intent_id},
        }
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": invoice["amount_due"],
            "currency": invoice["currency"],
            "customer": invoice["customer"],
            "created": created or int(time.time()),
            "livemode": False,
            "status": "requires_action" if requires_action else "requires_payment_method",
            "last_payment_error": None if requires_action else error,
            "metadata": {},
        }
        self.put(intent)
        payment = {
            "id": new_id("inpay_"),
            "object": "invoice_payment",
            "amount_paid": None,
            "amount_requested": invoice["amount_due"],
            "created": intent["created"],
            "currency": invoice["currency"],
            "invoice": invoice["id"],
            "is_default": True,
            "livemode": False,
            "payment": {"type": "payment_intent", "payment_intent": intent_id},
            "status": "open",
            "status_transitions": {"canceled_at": None, "paid_at": None},
        }
        self.put(payment)
        return intent

    def add_dispute(self, *, customer: dict, amount: int = 1499, reason: str = "fraudulent") -> dict:
        charge = fixture("charge")
        charge.update(id=new_id("ch_"), customer=customer["id"], amount=amount, created=int(time.time()) - 86400)
        self.put(charge)
        dispute = fixture("dispute")
        dispute.update(id=new_id("dp_"), charge=charge["id"], amount=amount, reason=reason, created=int(time.time()))
        return self.put(dispute)

    def add_checkout_session(
        self, *, customer: dict, prices: list[dict], mode: str = "subscription", **fields: Any
    ) -> dict:
        session = fixture("checkout_session")
        session_id = new_id("cs_test_")
        total = sum(price["unit_amount"] for price in prices)
        session.update(
            id=session_id,
            customer=customer["id"],
            mode=mode,
            amount_subtotal=total,
            amount_total=total,
            created=int(time.time()) - 120,
            **fields,
        )
        session["customer_details"]["email"] = customer["email"]
        session["customer_details"]["name"] = customer.get("name")
        self.put(session)
        self.line_items[session_id] = [
            {
                "id": new_id("li_"),
                "object": "item",
                "amount_discount": 0,
                "amount_subtotal": price["unit_amount"],
                "amount_tax": 0,
                "amount_total": price["unit_amount"],
                "currency": price["currency"],
                "description": "ModReady",
                "price": copy.deepcopy(price),
                "quantity": 1,
            }
            for price in prices
        ]
        return session


def expand_ids(value: Any, parts: list[str], find) -> Any:
    """Stripe's `expand`: along the path, replace each id that `find(id)` knows by a copy of its object."""
    if not parts or value is None:
        return value
    if isinstance(value, list):
        return [expand_ids(item, parts, find) for item in value]
    if not isinstance(value, dict):
        return value
    key, rest = parts[0], parts[1:]
    child = value.get(key)
    if isinstance(child, str):
        found = find(child)
        if found is not None:
            child = copy.deepcopy(found)
    value[key] = expand_ids(child, rest, find)
    return value
