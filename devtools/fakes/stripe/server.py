"""A fake Stripe API on 127.0.0.1 over the objects of the one builder (devtools/fakes/stripe/objects.py).

The fake serves what dj-stripe 2.11 and our code call: retrieve and paginated list (limit, starting_after,
status, customer, expand[]) of subscriptions, customers, products, prices, invoices (with `payments` when
expanded), charges, disputes, payment intents, payment methods and checkout sessions, a session's line items, a
product's features, a subscription's items and the account; and three writes: a customer's email update
(POST /v1/customers/<id>; every applied update is in `customer_updates`), customer portal sessions
(POST /v1/billing_portal/sessions, with flow_data; every one created is in `portal_sessions`) and customer balance
transactions (POST /v1/customers/<id>/balance_transactions), all honouring Idempotency-Key like Stripe: a repeat
replays the first answer, the same key with other parameters is refused. The subscription writes of the cancellation
flow (pause, discount, price change, cancel at period end) and coupons are in subscription_writes.py, mixed in. The
base class's switches (latency, fail_next, drop_next, rate_limit) apply to every route.
"""

import copy
import re
import time
from typing import Any

from devtools.fakes.server import FakeRequest, FakeResponse, FakeServer, route
from devtools.fakes.stripe.objects import PREFIXES, RESOURCES, StripeObjectBuilder, expand_ids, fixture, new_id
from devtools.fakes.stripe.subscription_writes import SubscriptionWrites

# https://docs.stripe.com/api/customer_portal/sessions/create#create_portal_session-flow_data-type
PORTAL_FLOW_TYPES = (
    "payment_method_update",
    "subscription_cancel",
    "subscription_update",
    "subscription_update_confirm",
)
# Stripe forgets an Idempotency-Key after 24 hours: a repeat after that acts again
# (https://docs.stripe.com/api/idempotent_requests).
IDEMPOTENCY_KEY_SECONDS = 24 * 3600
PORTAL_AFTER_COMPLETION = ("redirect", "hosted_confirmation", "portal_homepage")


def _invalid(param: str, message: str) -> FakeResponse:
    return FakeResponse(400, {"error": {"type": "invalid_request_error", "param": param, "message": message}})


def _portal_flow_refusal(params: dict) -> FakeResponse | None:
    """Stripe's checks of flow_data (https://docs.stripe.com/api/customer_portal/sessions/create#create_portal_session-
    flow_data): a known type; the subscription a subscription flow is about; a known after_completion type; the
    return_url its redirect needs."""
    flow_type = params.get("flow_data[type]")
    if flow_type is None:
        return None
    if flow_type not in PORTAL_FLOW_TYPES:
        return _invalid("flow_data[type]", f"Invalid flow_data[type]: must be one of {', '.join(PORTAL_FLOW_TYPES)}")
    if flow_type != "payment_method_update" and not params.get(f"flow_data[{flow_type}][subscription]"):
        param = f"flow_data[{flow_type}][subscription]"
        return _invalid(param, f"Missing required param: {param}.")
    after = params.get("flow_data[after_completion][type]")
    if after is not None and after not in PORTAL_AFTER_COMPLETION:
        return _invalid("flow_data[after_completion][type]", f"Invalid flow_data[after_completion][type]: {after}")
    if after == "redirect" and not params.get("flow_data[after_completion][redirect][return_url]"):
        param = "flow_data[after_completion][redirect][return_url]"
        return _invalid(param, f"Missing required param: {param}.")
    return None


class FakeStripe(SubscriptionWrites, StripeObjectBuilder, FakeServer):
    name = "stripe"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.objects: dict[str, dict[str, dict]] = {resource: {} for resource in RESOURCES.values()}
        self.line_items: dict[str, list[dict]] = {}
        self.account = fixture("account")
        # Stripe's idempotency: key -> (the request's parameters, the first answer, when it was stored), and every
        # customer update applied (id, parameters, Idempotency-Key), for tests to read.
        # https://docs.stripe.com/api/idempotent_requests
        self.idempotent: dict[str, tuple[dict, FakeResponse, float]] = {}
        self.customer_updates: list[dict] = []
        self.portal_sessions: list[dict] = []
        self.writes_init()

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.idempotent.clear()
            self.customer_updates.clear()
            self.portal_sessions.clear()
        self.writes_reset()

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
        return self._idempotent(key, params, lambda: self._customer_update(request.params["object_id"], params, key))

    def idempotency_keys_age(self, seconds: float) -> None:
        """Every key stored so far as if it had been stored `seconds` earlier (past IDEMPOTENCY_KEY_SECONDS Stripe
        has forgotten it)."""
        with self.lock:
            for key, (params, answer, stored_at) in list(self.idempotent.items()):
                self.idempotent[key] = (params, answer, stored_at - seconds)

    def _idempotent(self, key: str, params: dict, act) -> FakeResponse:
        """Stripe's idempotency on every POST (https://docs.stripe.com/api/idempotent_requests): the same key with the
        same parameters replays the first answer without acting again, for 24 hours; with other parameters it is
        refused (400 idempotency_error). Stripe keeps whatever the handler answered, a 5xx included. The base
        class's faults (fail_next, drop_next) answer before the handler runs, so nothing is stored for them, as for a
        request that never reached Stripe."""
        with self.lock:
            if key and key in self.idempotent and self.idempotent[key][2] < time.time() - IDEMPOTENCY_KEY_SECONDS:
                del self.idempotent[key]
            if key and key in self.idempotent:
                first_params, answer, _stored_at = self.idempotent[key]
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
            answer = act()
            if key:
                self.idempotent[key] = (params, answer, time.time())
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

    @route("POST", r"/v1/billing_portal/sessions")
    def portal_session_create(self, request: FakeRequest):
        """https://docs.stripe.com/api/customer_portal/sessions/create in the answer's real shape (the fixture). Like
        Stripe: an unknown customer is refused (400 resource_missing, param customer); so is a flow type it does not
        have. The URL points at this fake (GET answers a stand-in page), the flow records what was asked."""
        params = {key: values[-1] for key, values in request.form().items()}
        return self._idempotent(request.header("idempotency-key"), params, lambda: self._portal_session(params))

    def _portal_session(self, params: dict) -> FakeResponse:
        customer_id = params.get("customer", "")
        customer = self.objects["customers"].get(customer_id)
        if customer is None or customer.get("deleted"):
            answer = self._missing("customer", customer_id)
            answer.status = 400
            answer.json_body["error"]["param"] = "customer"
            return answer
        flow_type = params.get("flow_data[type]")
        refusal = _portal_flow_refusal(params)
        if refusal is not None:
            return refusal
        session = fixture("billing_portal_session")
        session_id = new_id("bps_")
        session.update(
            id=session_id,
            created=int(time.time()),
            customer=customer_id,
            return_url=params.get("return_url"),
            url=f"{self.url}/p/session/{session_id}",
        )
        if flow_type is None:
            session["flow"] = None
        else:
            session["flow"]["type"] = flow_type
            after = params.get("flow_data[after_completion][type]")
            if after:
                session["flow"]["after_completion"]["type"] = after
        self.portal_sessions.append(session)
        return FakeResponse(200, copy.deepcopy(session))

    @route("GET", r"/p/session/(?P<session_id>[^/]+)")
    def portal_page(self, request: FakeRequest):
        return {"stand_in": "Stripe customer portal", "session": request.params["session_id"]}

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
        r"/v1/(?P<resource>customers|subscriptions|products|prices|invoices|charges|disputes|payment_intents|"
        r"payment_methods|events)/(?P<object_id>[^/]+)",
    )
    def object_retrieve(self, request: FakeRequest):
        return self._retrieve(request, request.params["resource"])

    @route(
        "GET",
        r"/v1/(?P<resource>customers|subscriptions|products|prices|invoices|charges|disputes|payment_intents|"
        r"payment_methods|events)",
    )
    def object_list(self, request: FakeRequest):
        return self._list(request, request.params["resource"])

    @route("POST", r"/v1/customers/(?P<customer_id>[^/]+)/balance_transactions")
    def balance_transaction_create(self, request: FakeRequest):
        """https://docs.stripe.com/api/customer_balance_transactions/create: a negative amount is a credit taken off
        the customer's next invoice; the customer's `balance` moves by it.
        Every one is kept in objects["customer_balance_transactions"]."""
        params = {key: values[-1] for key, values in request.form().items()}
        customer_id = request.params["customer_id"]
        return self._idempotent(
            request.header("idempotency-key"), params, lambda: self._balance_transaction(customer_id, params)
        )

    def _balance_transaction(self, customer_id: str, params: dict) -> FakeResponse:
        customer = self.objects["customers"].get(customer_id)
        if customer is None or customer.get("deleted"):
            return self._missing("customer", customer_id)
        try:
            amount = int(params.get("amount", ""))
        except ValueError:
            amount = 0
        if not amount or not params.get("currency"):
            message = "Missing required param: amount." if not amount else "Missing required param: currency."
            return FakeResponse(400, {"error": {"type": "invalid_request_error", "message": message}})
        customer["balance"] = int(customer.get("balance") or 0) + amount
        transaction = {
            "id": new_id("cbtxn_"),
            "object": "customer_balance_transaction",
            "amount": amount,
            "created": int(time.time()),
            "credit_note": None,
            "currency": params["currency"].lower(),
            "customer": customer_id,
            "description": params.get("description"),
            "ending_balance": customer["balance"],
            "invoice": None,
            "livemode": False,
            "metadata": {k[9:-1]: v for k, v in params.items() if k.startswith("metadata[")},
            "type": "adjustment",
        }
        self.objects["customer_balance_transactions"][transaction["id"]] = transaction
        return FakeResponse(200, copy.deepcopy(transaction))

    # helpers ----------------------------------------------------------------------------------------------------
    def _invoice_payments(self, invoice_id: str, path: str) -> dict:
        with self.lock:
            payments = [
                copy.deepcopy(payment)
                for payment in self.objects["invoice_payments"].values()
                if payment.get("invoice") == invoice_id
            ]
        payments.sort(key=lambda payment: payment.get("created") or 0, reverse=True)
        return {
            "object": "list",
            "data": payments,
            "has_more": False,
            "url": f"/v1/invoice_payments?invoice={invoice_id}",
        }

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
        if resource == "invoices" and any(path.split(".")[0] == "payments" for path in expand):
            # Basil's invoice payments are not in the invoice unless expanded (includable field).
            obj["payments"] = self._invoice_payments(obj["id"], request.path)
        if resource == "checkout_sessions" and any(path.startswith("line_items") for path in expand):
            # Like Stripe, an expanded list holds its first page only (10 items); the rest is read with the list call.
            all_items = self.line_items.get(obj["id"], [])
            items = [copy.deepcopy(item) for item in all_items[:10]]
            obj["line_items"] = {
                "object": "list",
                "data": items,
                "has_more": len(all_items) > 10,
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
        if object_id.startswith("di_"):
            return self.discounts.get(object_id)
        if _prefix(object_id) not in PREFIXES:
            return None
        with self.lock:
            return self.objects[PREFIXES[_prefix(object_id)]].get(object_id)


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
