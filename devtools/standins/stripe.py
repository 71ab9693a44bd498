"""A fake Stripe API on 127.0.0.1, the Stripe object builders and the webhook signing helper.

Tests, benchmarks and the local run's Stripe stand-in (devtools/standins/service.py, served by bin/run for
`manage.py demo_journey`) share all three; tests import them through tests/fakes/stripe.py:

    with FakeStripe() as fake:                          # then point stripe-python at fake.url (see use_fake_stripe)
        world = fake.add_subscription(email="a@example.com", product=fake.add_product(modready=True))
        event = stripe_event("customer.subscription.created", world.subscription)
        body, header = signed_request(event, secret="whsec_...")

The fake serves what dj-stripe 2.11 and our code call: retrieve and paginated list (limit, starting_after,
status, customer, expand[]) of subscriptions, customers, products, prices, invoices, charges, disputes, payment
intents and checkout sessions, a session's line items, a product's features and the account; and one write, a
customer's email update (POST /v1/customers/<id>, honouring Idempotency-Key like Stripe: a repeat replays the first
answer, the same key with other parameters is refused; every applied update is in `customer_updates`).
Objects are built from the JSON fixtures in stripe_fixtures/ (API version 2025-03-31.basil shape: billing period on
subscription items, an invoice's subscription under parent.subscription_details.subscription). The base class's
switches (latency, fail_next, drop_next, rate_limit) apply to every route.
"""

import copy
import hashlib
import hmac
import itertools
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.standins.server import FakeRequest, FakeResponse, FakeServer, route

FIXTURES = Path(__file__).parent / "stripe_fixtures"
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
    over HTTP: devtools.standins.service.StandInClient)."""

    line_items: dict[str, list[dict]]

    def put(self, obj: dict) -> dict:
        raise NotImplementedError

    def get(self, object_id: str) -> dict:
        raise NotImplementedError

    def update(self, object_id: str, **fields: Any) -> dict:
        obj = self.get(object_id)
        obj.update(fields)
        return self.put(obj)

    def add_customer(self, *, email: str, name: str = "Player One", **fields: Any) -> dict:
        customer = fixture("customer")
        customer.update(id=new_id("cus_"), email=email, name=name, created=int(time.time()) - 3600, **fields)
        return self.put(customer)

    def add_product(self, *, name: str = "ModReady Server", modready: bool = True, **fields: Any) -> dict:
        product = fixture("product")
        product.update(id=new_id("prod_"), name=name, metadata={"modready": "true"} if modready else {}, **fields)
        return self.put(product)

    def add_price(self, *, product: dict, unit_amount: int = 1499, interval: str = "month", **fields: Any) -> dict:
        price = fixture("price")
        price.update(id=new_id("price_"), product=product["id"], unit_amount=unit_amount, **fields)
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
        **fields: Any,
    ) -> SubscriptionWorld:
        customer = customer or self.add_customer(email=email or f"{new_id('player')}@example.com")
        product = product or self.add_product()
        price = price or self.add_price(product=product)
        created = created or int(time.time()) - 600
        subscription = fixture("subscription")
        sub_id = new_id("sub_")
        item = subscription["items"]["data"][0]
        item.update(
            id=new_id("si_"),
            subscription=sub_id,
            price=copy.deepcopy(price),
            created=created,
            current_period_start=created,
            current_period_end=created + 30 * 86400,
        )
        subscription["items"]["url"] = f"/v1/subscription_items?subscription={sub_id}"
        subscription.update(
            id=sub_id,
            customer=customer["id"],
            status=status,
            created=created,
            start_date=created,
            billing_cycle_anchor=created,
            currency=price["currency"],
            **fields,
        )
        if status == "trialing" and not subscription.get("trial_end"):
            subscription.update(trial_start=created, trial_end=created + 14 * 86400)
        self.put(subscription)
        return SubscriptionWorld(customer=customer, product=product, price=price, subscription=subscription)

    def add_invoice(self, *, subscription: dict, **fields: Any) -> dict:
        invoice = fixture("invoice")
        invoice_id = new_id("in_")
        price = subscription["items"]["data"][0]["price"]
        invoice.update(
            id=invoice_id,
            customer=subscription["customer"],
            amount_due=price["unit_amount"],
            amount_remaining=price["unit_amount"],
            currency=price["currency"],
            created=int(time.time()) - 60,
            hosted_invoice_url=f"https://invoice.stripe.com/i/acct_1ModReadyFake000/test_{invoice_id}",
            **fields,
        )
        invoice["parent"]["subscription_details"]["subscription"] = subscription["id"]
        invoice["lines"]["url"] = f"/v1/invoices/{invoice_id}/lines"
        return self.put(invoice)

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


class FakeStripe(StripeObjectBuilder, FakeServer):
    name = "stripe"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.objects: dict[str, dict[str, dict]] = {resource: {} for resource in RESOURCES.values()}
        self.line_items: dict[str, list[dict]] = {}
        self.account = fixture("account")
        # Stripe's idempotency: key -> (the request's parameters, the first answer), and every customer update applied
        # (id, parameters, Idempotency-Key), for tests to read. https://docs.stripe.com/api/idempotent_requests
        self.idempotent: dict[str, tuple[dict, FakeResponse]] = {}
        self.customer_updates: list[dict] = []

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.idempotent.clear()
            self.customer_updates.clear()

    def put(self, obj: dict) -> dict:
        """Store (or replace) an object; the fake answers with its current state from now on."""
        with self.lock:
            self.objects[RESOURCES[obj["object"]]][obj["id"]] = obj
        return obj

    def get(self, object_id: str) -> dict:
        return self.objects[PREFIXES[_prefix(object_id)]][object_id]

    def update(self, object_id: str, **fields: Any) -> dict:
        with self.lock:
            return super().update(object_id, **fields)

    # errors in Stripe's shape -----------------------------------------------------------------------------------
    def error_body(self, status: int) -> Any:
        kind = {429: "rate_limit_error", 401: "authentication_error"}.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        return {"error": {"type": kind, "message": f"Injected failure {status}"}}

    # routes -----------------------------------------------------------------------------------------------------
    @route("GET", r"/v1/account")
    def account_retrieve(self, request: FakeRequest):
        return copy.deepcopy(self.account)

    @route("POST", r"/v1/customers/(?P<object_id>[^/]+)")
    def customer_update(self, request: FakeRequest):
        """https://docs.stripe.com/api/customers/update (the email only, which is what we change). Like Stripe: the
        same Idempotency-Key with the same parameters replays the first answer without acting again; with other
        parameters it is refused (400 idempotency_error); a malformed address is refused (400 email_invalid)."""
        params = {key: values[-1] for key, values in request.form().items()}
        key = request.header("idempotency-key")
        with self.lock:
            if key and key in self.idempotent:
                first_params, answer = self.idempotent[key]
                if first_params != params:
                    return FakeResponse(
                        400,
                        {
                            "error": {
                                "type": "idempotency_error",
                                "message": "Keys for idempotent requests can only be used with the same parameters "
                                "they were first used with.",
                            }
                        },
                    )
                return FakeResponse(answer.status, answer.json_body, headers={"Idempotent-Replayed": "true"})
            answer = self._customer_update(request.params["object_id"], params, key)
            if key and answer.status < 500:
                self.idempotent[key] = (params, answer)
        return answer

    def _customer_update(self, customer_id: str, params: dict, key: str) -> FakeResponse:
        customer = self.objects["customers"].get(customer_id)
        if customer is None or customer.get("deleted"):
            return self._missing("customer", customer_id)
        unknown = sorted(set(params) - {"email", "name"})
        if unknown:
            return FakeResponse(
                400,
                {"error": {"type": "invalid_request_error", "message": f"Received unknown parameter: {unknown[0]}"}},
            )
        email = params.get("email")
        if email is not None and email != "" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            return FakeResponse(
                400,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "email_invalid",
                        "param": "email",
                        "message": f"Invalid email address: {email}",
                    }
                },
            )
        customer.update({name: (value or None) for name, value in params.items()})
        self.customer_updates.append({"id": customer_id, "params": dict(params), "idempotency_key": key})
        return FakeResponse(200, copy.deepcopy(customer))

    @route("GET", r"/v1/products/(?P<product_id>[^/]+)/features")
    def product_features(self, request: FakeRequest):
        return {"object": "list", "data": [], "has_more": False, "url": request.path}

    @route("GET", r"/v1/checkout/sessions/(?P<session_id>[^/]+)/line_items")
    def session_line_items(self, request: FakeRequest):
        items = self.line_items.get(request.params["session_id"])
        if items is None:
            return self._missing("checkout.session", request.params["session_id"])
        page = self._page(request, items)
        for path in _expand_params(request):
            page = self._expand(page, path.split("."))
        return page

    @route("GET", r"/v1/checkout/sessions/(?P<object_id>[^/]+)")
    def session_retrieve(self, request: FakeRequest):
        return self._retrieve(request, "checkout_sessions")

    @route("GET", r"/v1/checkout/sessions")
    def session_list(self, request: FakeRequest):
        return self._list(request, "checkout_sessions")

    @route(
        "GET",
        r"/v1/(?P<resource>customers|subscriptions|products|prices|invoices|charges|disputes|payment_intents|events)"
        r"/(?P<object_id>[^/]+)",
    )
    def object_retrieve(self, request: FakeRequest):
        return self._retrieve(request, request.params["resource"])

    @route(
        "GET",
        r"/v1/(?P<resource>customers|subscriptions|products|prices|invoices|charges|disputes|payment_intents|events)",
    )
    def object_list(self, request: FakeRequest):
        return self._list(request, request.params["resource"])

    # helpers ----------------------------------------------------------------------------------------------------
    def _missing(self, kind: str, object_id: str) -> FakeResponse:
        return FakeResponse(
            404,
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "param": "id",
                    "message": f"No such {kind}: '{object_id}'",
                }
            },
        )

    def _retrieve(self, request: FakeRequest, resource: str):
        with self.lock:
            obj = self.objects[resource].get(request.params["object_id"])
            obj = copy.deepcopy(obj) if obj else None
        if obj is None:
            return self._missing(resource.rstrip("s"), request.params["object_id"])
        expand = _expand_params(request)
        if resource == "checkout_sessions" and any(path.startswith("line_items") for path in expand):
            items = [copy.deepcopy(item) for item in self.line_items.get(obj["id"], [])]
            obj["line_items"] = {
                "object": "list",
                "data": items,
                "has_more": False,
                "url": f"{request.path}/line_items",
            }
        for path in expand:
            obj = self._expand(obj, path.split("."))
        return obj

    def _list(self, request: FakeRequest, resource: str):
        query = {key: values[-1] for key, values in request.query.items()}
        with self.lock:
            objects = list(self.objects[resource].values())
        if resource == "subscriptions":
            status = query.get("status")
            if status != "all":
                objects = [o for o in objects if (o["status"] == status if status else o["status"] != "canceled")]
        if query.get("customer"):
            objects = [o for o in objects if o.get("customer") == query["customer"]]
        page = self._page(request, objects)
        for path in _expand_params(request):
            page = self._expand(page, path.split("."))
        return page

    def _page(self, request: FakeRequest, objects: list[dict]) -> dict:
        query = {key: values[-1] for key, values in request.query.items()}
        limit = max(1, min(100, int(query.get("limit") or 10)))
        start = 0
        if query.get("starting_after"):
            after = query["starting_after"]
            start = next((i + 1 for i, obj in enumerate(objects) if obj["id"] == after), len(objects))
        with self.lock:
            data = [copy.deepcopy(obj) for obj in objects[start : start + limit]]  # only the page is copied
        return {"object": "list", "data": data, "has_more": start + limit < len(objects), "url": request.path}

    def _expand(self, value: Any, parts: list[str]) -> Any:
        """Replace ids by objects along an expand path (`data.customer`, `items.data.price.product`, ...)."""
        return expand_ids(value, parts, self._find)

    def _find(self, object_id: str) -> dict | None:
        if _prefix(object_id) not in PREFIXES:
            return None
        with self.lock:
            return self.objects[PREFIXES[_prefix(object_id)]].get(object_id)


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


def _prefix(object_id: str) -> str:
    if object_id.startswith("cs_"):
        return "cs_"
    return object_id.split("_", 1)[0] + "_"


def _expand_params(request: FakeRequest) -> list[str]:
    paths = []
    for key, values in request.query.items():
        if key == "expand" or key.startswith("expand["):
            paths.extend(values)
    return paths
