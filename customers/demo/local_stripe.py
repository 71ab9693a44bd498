"""Stripe for seed_demo: the objects a demo history has made so far, answered to stripe-python in-process.

Processing a Stripe event re-fetches its object from Stripe (dj-stripe's sync, billing's "current state" check).
seed_demo has no Stripe account and must run offline, so while it plays its history it installs this stand-in as
stripe-python's HTTP client (`stripe.default_http_client`, the library's seam for custom transports): every call
dj-stripe and billing make is answered from `LocalStripe.objects`, which holds each object as it stands at the
moment being replayed. Nothing leaves the process, whatever keys the environment holds.

The object shapes are Stripe's (API version 2025-03-31.basil; stripe_payloads/ are real-shape examples):
https://docs.stripe.com/api/subscriptions/object, .../invoices/object, .../customers/object, .../events/object.
"""

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import stripe
from stripe._http_client import HTTPClient

from devtools.standins.stripe import expand_ids

PAYLOADS = Path(__file__).parent / "stripe_payloads"
PREFIXES = {"cus": "customers", "sub": "subscriptions", "prod": "products", "price": "prices", "in": "invoices"}
_shapes: dict[str, dict] = {}


def payload(name: str) -> dict:
    """A fresh copy of a real-shape Stripe object (stripe_payloads/<name>.json)."""
    if name not in _shapes:
        _shapes[name] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return copy.deepcopy(_shapes[name])


class LocalStripe(HTTPClient):
    """Answers GET /v1/<resource>/<id> (with expand[]) and lists from the objects put here."""

    name = "modready-local-stripe"

    def __init__(self):
        super().__init__()
        self.objects: dict[str, dict] = {}

    def put(self, obj: dict) -> dict:
        self.objects[obj["id"]] = obj
        return obj

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        segments = [segment for segment in parts.path.split("/") if segment][1:]  # without "v1"
        if method.lower() != "get":
            return self._answer(400, _error("invalid_request_error", "The demo's Stripe stand-in only reads."))
        if segments == ["account"]:
            return self._answer(200, payload("account"))
        if len(segments) == 2 and segments[1] in self.objects:
            obj = copy.deepcopy(self.objects[segments[1]])
            for key, values in query.items():
                if key.startswith("expand"):
                    for path in values:
                        obj = self._expand(obj, path.split("."))
            return self._answer(200, obj)
        if len(segments) == 2 and "_" in segments[1]:
            return self._answer(404, _error("invalid_request_error", f"No such object: '{segments[1]}'"))
        # A list (a product's features, a subscription's items, ...): what the demo holds of that kind, else none.
        resource = segments[0] if segments else ""
        data = [
            copy.deepcopy(obj)
            for obj in self.objects.values()
            if len(segments) == 1 and PREFIXES.get(obj["id"].split("_", 1)[0]) == resource
        ]
        return self._answer(200, {"object": "list", "data": data, "has_more": False, "url": parts.path})

    def _expand(self, value: Any, parts: list[str]) -> Any:
        return expand_ids(value, parts, self.objects.get)

    @staticmethod
    def _answer(status: int, body: dict) -> tuple[str, int, dict]:
        return json.dumps(body), status, {"Request-Id": "req_modready_local"}

    def close(self):
        pass


def _error(kind: str, message: str) -> dict:
    return {"error": {"type": kind, "message": message}}


@contextmanager
def installed(local: LocalStripe) -> Iterator[LocalStripe]:
    """stripe-python talks to `local` inside the block, and to what it talked to before after it."""
    previous, previous_retries = stripe.default_http_client, stripe.max_network_retries
    stripe.default_http_client, stripe.max_network_retries = local, 0
    try:
        yield local
    finally:
        stripe.default_http_client, stripe.max_network_retries = previous, previous_retries
