"""The Stripe stand-in of the local run: the fake Stripe of the tests, served by bin/run on 127.0.0.1, keeping its
objects in var/ between runs, and taking new state from `manage.py demo_journey` over HTTP.

Why a stand-in and not nothing: processing a Stripe event re-fetches its object from Stripe's API (dj-stripe), and the
daily sync lists subscriptions; without keys they would fail, and with keys they would need an account and the
internet. config.settings.local points stripe-python here (STRIPE_API_HOST) whenever no Stripe key is set.

Besides Stripe's read API (devtools/fakes/stripe/server.py) it has one route of its own, `POST /_standin/objects`, which
stores the Stripe objects in the body as their current state, as if they had changed in Stripe. It takes the
stand-in's own API key, like every call here.
"""

import json
import logging
import threading
from pathlib import Path

import requests

from devtools.fakes import STANDIN_SECRET_KEY
from devtools.fakes.server import FakeRequest, FakeResponse, route
from devtools.fakes.stripe.objects import RESOURCES, StripeObjectBuilder
from devtools.fakes.stripe.server import FakeStripe

logger = logging.getLogger(__name__)


class StripeStandIn(FakeStripe):
    name = "stripe-standin"

    def __init__(self, *, port: int, state_path: Path | None = None, api_key: str = STANDIN_SECRET_KEY):
        super().__init__("127.0.0.1", port)
        self.api_key = api_key
        self.state_path = state_path
        self._save_lock = threading.Lock()
        if state_path is not None and state_path.exists():
            self._load(state_path)

    def _load(self, path: Path) -> None:
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            logger.warning("Stripe stand-in: %s is unreadable; starting empty", path)
            return
        for resource, objects in (state.get("objects") or {}).items():
            if resource in self.objects:
                self.objects[resource].update(objects)
        self.line_items.update(state.get("line_items") or {})

    def put(self, obj: dict) -> dict:
        stored = super().put(obj)
        self.save()
        return stored

    def save(self) -> None:
        if self.state_path is None:
            return
        with self._save_lock, self.lock:
            state = json.dumps({"objects": self.objects, "line_items": self.line_items})
            partial = self.state_path.with_suffix(".tmp")
            partial.write_text(state)
            partial.replace(self.state_path)

    def _handle(self, request: FakeRequest) -> FakeResponse | None:
        if request.header("authorization") != f"Bearer {self.api_key}":
            return FakeResponse(401, self.error_body(401))
        return super()._handle(request)

    @route("POST", r"/_standin/objects")
    def objects_store(self, request: FakeRequest):
        try:
            objects = request.json()
        except ValueError:
            return 400, self.error_body(400)
        if not isinstance(objects, list) or not all(
            isinstance(obj, dict) and obj.get("object") in RESOURCES and isinstance(obj.get("id"), str)
            for obj in objects
        ):
            return 400, self.error_body(400)
        for obj in objects:
            self.put(obj)
        return {"stored": [obj["id"] for obj in objects]}


class StandInClient(StripeObjectBuilder):
    """Builds Stripe objects like the fake does (same fixtures) and stores them in a running stand-in over HTTP."""

    def __init__(self, *, url: str, api_key: str = STANDIN_SECRET_KEY, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = timeout
        self.line_items: dict[str, list[dict]] = {}
        self._objects: dict[str, dict] = {}

    def reachable(self) -> bool:
        try:
            return self.session.get(f"{self.url}/v1/account", timeout=self.timeout).status_code == 200
        except requests.RequestException:
            return False

    def put(self, obj: dict) -> dict:
        response = self.session.post(f"{self.url}/_standin/objects", json=[obj], timeout=self.timeout)
        response.raise_for_status()
        self._objects[obj["id"]] = obj
        return obj

    def get(self, object_id: str) -> dict:
        return self._objects[object_id]
