"""The fake Stripe's subscription writes, in Stripe's shapes (API version 2025-03-31.basil), mixed into FakeStripe:

- POST /v1/subscriptions/{id} (https://docs.stripe.com/api/subscriptions/update): `pause_collection[behavior]` and
  `[resumes_at]` (or `pause_collection=` to clear it), `discounts[0][coupon]`, `items[0][id]` + `items[0][price]`
  with `proration_behavior`, `cancel_at_period_end` with `cancellation_details[feedback]` / `[comment]`, `metadata[..]`;
- POST /v1/coupons and GET /v1/coupons/{id} (https://docs.stripe.com/api/coupons): `id`, `percent_off`, `duration`,
  `duration_in_months`, `name`; an id already taken is refused (400 resource_already_exists).

Both honour Idempotency-Key through FakeStripe._idempotent. Every applied change emits the event Stripe would
(`customer.subscription.updated` with `data.previous_attributes`), kept in `emitted` for a test or the demo to deliver;
`advance(now)` plays what Stripe does by itself as time passes: a pause whose `resumes_at` came is cleared
(customer.subscription.updated), a subscription set to cancel at its period's end ends then
(customer.subscription.deleted). Time is django.utils.timezone.now(), so the demo's replayed clock applies.
"""

import copy

from django.utils import timezone

from devtools.fakes.server import FakeRequest, FakeResponse, route
from devtools.fakes.stripe.objects import new_id, stripe_event

PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")
FEEDBACK = (
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
)
PRORATION = ("always_invoice", "create_prorations", "none")
KNOWN = ("pause_collection", "discounts", "items", "proration_behavior", "cancel_at_period_end")
KNOWN += ("cancellation_details", "metadata")


def _now() -> int:
    return int(timezone.now().timestamp())


def _refusal(message: str, *, param: str = "", code: str = "") -> FakeResponse:
    error = {"type": "invalid_request_error", "message": message}
    if param:
        error["param"] = param
    if code:
        error["code"] = code
    return FakeResponse(400, {"error": error})


class SubscriptionWrites:
    """Mixed into FakeStripe (which provides lock, objects, _idempotent and _missing)."""

    def writes_init(self) -> None:
        self.coupons: dict[str, dict] = {}
        self.discounts: dict[str, dict] = {}
        self.subscription_updates: list[dict] = []
        self.emitted: list[dict] = []

    def writes_reset(self) -> None:
        with self.lock:
            self.coupons.clear()
            self.discounts.clear()
            self.subscription_updates.clear()
            self.emitted.clear()

    def emit(self, event_type: str, obj: dict, previous_attributes: dict | None = None) -> dict:
        event = stripe_event(event_type, obj, created=_now(), previous_attributes=previous_attributes)
        with self.lock:
            self.objects["events"][event["id"]] = event
            self.emitted.append(event)
        return event

    # coupons ----------------------------------------------------------------------------------------------------
    @route("POST", r"/v1/coupons")
    def coupon_create(self, request: FakeRequest):
        params = {key: values[-1] for key, values in request.form().items()}
        return self._idempotent(request.header("idempotency-key"), params, lambda: self._coupon_create(params))

    def _coupon_create(self, params: dict) -> FakeResponse:
        coupon_id = params.get("id") or new_id("")
        if coupon_id in self.coupons:
            return _refusal("Coupon already exists.", param="id", code="resource_already_exists")
        duration = params.get("duration", "once")
        if duration not in ("once", "repeating", "forever"):
            return _refusal(f"Invalid duration: {duration}", param="duration")
        if duration == "repeating" and not params.get("duration_in_months"):
            return _refusal("duration_in_months is required for a repeating coupon", param="duration_in_months")
        coupon = {
            "id": coupon_id,
            "object": "coupon",
            "amount_off": None,
            "created": _now(),
            "currency": None,
            "duration": duration,
            "duration_in_months": int(params["duration_in_months"]) if duration == "repeating" else None,
            "livemode": False,
            "max_redemptions": None,
            "metadata": {},
            "name": params.get("name"),
            "percent_off": float(params["percent_off"]) if params.get("percent_off") else None,
            "redeem_by": None,
            "times_redeemed": 0,
            "valid": True,
        }
        self.coupons[coupon_id] = coupon
        return FakeResponse(200, copy.deepcopy(coupon))

    @route("GET", r"/v1/coupons/(?P<coupon_id>[^/]+)")
    def coupon_retrieve(self, request: FakeRequest):
        coupon = self.coupons.get(request.params["coupon_id"])
        return copy.deepcopy(coupon) if coupon else self._missing("coupon", request.params["coupon_id"])

    # subscription update ----------------------------------------------------------------------------------------
    @route("POST", r"/v1/subscriptions/(?P<object_id>[^/]+)")
    def subscription_update(self, request: FakeRequest):
        params = {key: values[-1] for key, values in request.form().items()}
        key = request.header("idempotency-key")
        return self._idempotent(
            key, params, lambda: self._subscription_update(request.params["object_id"], params, key)
        )

    def _subscription_update(self, sub_id: str, params: dict, key: str) -> FakeResponse:
        subscription = self.objects["subscriptions"].get(sub_id)
        if subscription is None:
            return self._missing("subscription", sub_id)
        unknown = sorted(name for name in params if name.split("[", 1)[0] not in KNOWN)
        if unknown:
            return _refusal(f"Received unknown parameter: {unknown[0]}", param=unknown[0])
        if subscription["status"] == "canceled" and any(
            name.split("[", 1)[0] not in ("cancellation_details", "metadata") for name in params
        ):
            return _refusal("A canceled subscription can only update its cancellation_details and metadata.")
        changed = copy.deepcopy(subscription)
        for step in (self._pause, self._discount, self._price, self._cancel, self._metadata):
            refusal = step(changed, params)
            if refusal is not None:
                return refusal
        previous = {name: subscription[name] for name in changed if changed[name] != subscription[name]}
        self.objects["subscriptions"][sub_id] = changed
        self.subscription_updates.append({"id": sub_id, "params": dict(params), "idempotency_key": key})
        if previous:
            self.emit("customer.subscription.updated", changed, previous)
        return FakeResponse(200, copy.deepcopy(changed))

    def _pause(self, subscription: dict, params: dict) -> FakeResponse | None:
        if params.get("pause_collection") == "":
            subscription["pause_collection"] = None
            return None
        behavior = params.get("pause_collection[behavior]")
        if behavior is None:
            return None
        if behavior not in PAUSE_BEHAVIORS:
            return _refusal(f"Invalid pause_collection[behavior]: {behavior}", param="pause_collection[behavior]")
        resumes_at = params.get("pause_collection[resumes_at]")
        if resumes_at is not None and (not resumes_at.isdigit() or int(resumes_at) <= _now()):
            return _refusal("resumes_at must be a timestamp in the future.", param="pause_collection[resumes_at]")
        subscription["pause_collection"] = {
            "behavior": behavior,
            "resumes_at": int(resumes_at) if resumes_at is not None else None,
        }
        return None

    def _discount(self, subscription: dict, params: dict) -> FakeResponse | None:
        coupon_id = params.get("discounts[0][coupon]")
        if coupon_id is None:
            return None
        coupon = self.coupons.get(coupon_id)
        if coupon is None:
            return _refusal(f"No such coupon: '{coupon_id}'", param="discounts[0][coupon]", code="resource_missing")
        discount_id = new_id("di_")
        start = _now()
        months = coupon.get("duration_in_months")
        self.discounts[discount_id] = {
            "id": discount_id,
            "object": "discount",
            "checkout_session": None,
            "customer": subscription["customer"],
            "end": start + months * 30 * 86400 if months else None,
            "invoice": None,
            "invoice_item": None,
            "promotion_code": None,
            "source": {"type": "coupon", "coupon": coupon_id},
            "start": start,
            "subscription": subscription["id"],
        }
        coupon["times_redeemed"] += 1
        subscription["discounts"] = [discount_id]  # ids, as Stripe lists them unless expanded
        return None

    def _price(self, subscription: dict, params: dict) -> FakeResponse | None:
        price_id = params.get("items[0][price]")
        if price_id is None:
            return None
        if params.get("proration_behavior", "create_prorations") not in PRORATION:
            return _refusal("Invalid proration_behavior", param="proration_behavior")
        price = self.objects["prices"].get(price_id)
        if price is None:
            return _refusal(f"No such price: '{price_id}'", param="items[0][price]", code="resource_missing")
        items = subscription["items"]["data"]
        item = next((i for i in items if i["id"] == params.get("items[0][id]")), None)
        if item is None:
            return _refusal("No such subscription item", param="items[0][id]", code="resource_missing")
        item["price"] = copy.deepcopy(price)
        return None

    def _cancel(self, subscription: dict, params: dict) -> FakeResponse | None:
        if "cancel_at_period_end" in params:
            at_end = params["cancel_at_period_end"] == "true"
            period_end = subscription["items"]["data"][0]["current_period_end"]
            subscription.update(cancel_at_period_end=at_end, cancel_at=period_end if at_end else None)
            subscription["canceled_at"] = _now() if at_end else None
            details = subscription.get("cancellation_details") or {}
            details["reason"] = "cancellation_requested" if at_end else None
            subscription["cancellation_details"] = details
        feedback = params.get("cancellation_details[feedback]")
        if feedback is not None:
            if feedback not in FEEDBACK and feedback != "":
                return _refusal("Invalid cancellation_details[feedback]", param="cancellation_details[feedback]")
            subscription["cancellation_details"] = {**(subscription.get("cancellation_details") or {})}
            subscription["cancellation_details"]["feedback"] = feedback or None
        if "cancellation_details[comment]" in params:
            subscription["cancellation_details"] = {**(subscription.get("cancellation_details") or {})}
            subscription["cancellation_details"]["comment"] = params["cancellation_details[comment]"] or None
        return None

    def _metadata(self, subscription: dict, params: dict) -> FakeResponse | None:
        for name, value in params.items():
            if name.startswith("metadata[") and name.endswith("]"):
                subscription["metadata"] = {**(subscription.get("metadata") or {}), name[9:-1]: value}
        return None

    # time passing -----------------------------------------------------------------------------------------------
    def advance(self, now: int | None = None, *, subscription_ids: set[str] | None = None) -> list[dict]:
        """What Stripe does by itself by `now` (to every subscription, or to `subscription_ids`): pauses that reached
        resumes_at end, subscriptions set to cancel at their period's end end. Returns the events emitted."""
        now = _now() if now is None else now
        emitted = []
        with self.lock:
            for sub_id, subscription in list(self.objects["subscriptions"].items()):
                if subscription["status"] == "canceled" or (
                    subscription_ids is not None and sub_id not in subscription_ids
                ):
                    continue
                changed = copy.deepcopy(subscription)
                pause = changed.get("pause_collection") or {}
                if pause.get("resumes_at") and pause["resumes_at"] <= now:
                    changed["pause_collection"] = None
                    self.objects["subscriptions"][sub_id] = changed
                    emitted.append(self.emit("customer.subscription.updated", changed, {"pause_collection": pause}))
                    subscription = changed
                    changed = copy.deepcopy(subscription)
                if changed.get("cancel_at") and changed["cancel_at"] <= now:
                    changed.update(status="canceled", ended_at=changed["cancel_at"])
                    self.objects["subscriptions"][sub_id] = changed
                    emitted.append(self.emit("customer.subscription.deleted", changed, None))
        return emitted
