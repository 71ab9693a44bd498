"""A fake Mautic (REST API under /api with Basic auth, and its contact webhooks) on 127.0.0.1.

    with FakeMautic() as mautic:
        contact_id = mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
        body = mautic.webhook_body([contact_id])          # a real-shape lead_post_save_update delivery
        headers = {"Webhook-Signature": sign(body, SECRET)}
        mautic.email_fail_next()                          # the next send answers 200 {"success": false}

The traps it keeps (see docs/providers.md): `search=email:` is a prefix match while `where[...][expr]=eq` is exact;
a list answer is keyed by contact id with `total` as a string, and an empty one is `[]`; `PUT .../edit` clears every
field it does not name; sending an email answers 200 even when it fails. Webhook bodies are built from the fixture
in devtools/fakes/mautic_fixtures/, which has the shape Mautic posts (fields grouped, empty groups as `[]`).
"""

import base64
import copy
import hashlib
import hmac
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devtools.fakes.server import FakeRequest, FakeResponse, FakeServer, route

USERNAME, PASSWORD = "api-user", "api-password"
WEBHOOK_SECRET = "mautic-webhook-secret-for-tests"
# Mautic's webhook events, real shape: the one fixture per provider event the webhook tests use as well.
EVENT_FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mautic"
CUSTOM_FIELDS = ("opt_in_confirmed", "vip_status", "promo_code", "discord_invite_link_vip", "discord_invite_link_basic")


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _iso(stored: str | None) -> str | None:
    """Mautic stores `Y-m-d H:i:s` in UTC and shows it as ISO 8601 with an offset in the API and in webhooks."""
    return datetime.strptime(stored, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).isoformat() if stored else None


def _bool(value: Any) -> str:
    return "1" if value in (True, 1, "1", "true", "yes") else "0"


class FakeMautic(FakeServer):
    name = "mautic"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.contacts: dict[int, dict[str, Any]] = {}
        self.sent_emails: list[tuple[str, str]] = []  # (email id, contact id) actually sent
        self.edits: list[tuple[str, int, dict]] = []  # (method, contact id, body) of every edit
        self._email_failures = 0
        self._ids = itertools.count(4711)
        # Mautic dates have one-second resolution. Each change here takes the next second, so the order of changes
        # made within one test is visible in dateModified; `clock_step = 0` keeps them in one second (as a burst of
        # real changes would be).
        self.clock = datetime.now(UTC).replace(microsecond=0)
        self.clock_step = timedelta(seconds=1)

    def _tick(self) -> str:
        self.clock += self.clock_step
        return self.clock.strftime("%Y-%m-%d %H:%M:%S")

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.contacts.clear()
            self.sent_emails.clear()
            self.edits.clear()
            self._email_failures = 0
            self.clock_step = timedelta(seconds=1)

    # --- setup and views --------------------------------------------------------------------------------------------
    def add_contact(self, *, email: str, **fields: Any) -> str:
        with self.lock:
            contact_id = next(self._ids)
            base = dict.fromkeys(("firstname", "lastname", *CUSTOM_FIELDS))
            base.update(opt_in_confirmed="0", vip_status="0")
            base.update({k: (_bool(v) if k in ("opt_in_confirmed", "vip_status") else v) for k, v in fields.items()})
            now = self._tick()
            self.contacts[contact_id] = {
                **base,
                "id": contact_id,
                "email": email,
                "date_added": now,
                "date_modified": now,
            }
            return str(contact_id)

    def update_contact(self, contact_id: str, **fields: Any) -> None:
        """A change made in Mautic's UI (a staff member clearing a field, a form setting vip_status)."""
        with self.lock:
            contact = self.contacts[int(contact_id)]
            contact.update({k: (_bool(v) if k in ("opt_in_confirmed", "vip_status") else v) for k, v in fields.items()})
            contact["date_modified"] = self._tick()

    def delete_contact(self, contact_id: str) -> None:
        """Deleted in Mautic's UI: every call on it answers 404 from now on."""
        with self.lock:
            del self.contacts[int(contact_id)]

    def contact(self, contact_id: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.contacts[int(contact_id)])

    def email_fail_next(self, times: int = 1) -> None:
        """The next sends answer 200 {"success": false} and send nothing (Mautic's way of failing)."""
        with self.lock:
            self._email_failures += times

    def webhook_body(self, contact_ids: list[str], *, event: str = "mautic.lead_post_save_update") -> bytes:
        """A delivery as Mautic posts it, for the contacts' current state (build it when the change happens and post
        it later to play a late webhook)."""
        template = json.loads((EVENT_FIXTURES / "lead_post_save_update.json").read_text())[
            "mautic.lead_post_save_update"
        ][0]
        events = []
        for contact_id in contact_ids:
            state = self.contact(contact_id)
            event_body = copy.deepcopy(template)
            contact = event_body["contact"]
            contact["id"] = str(contact_id)  # ids may arrive as strings
            contact["dateAdded"] = _iso(state["date_added"])
            contact["dateModified"] = _iso(state["date_modified"])
            event_body["timestamp"] = contact["dateModified"]
            for group in contact["fields"].values():
                if not isinstance(group, dict):
                    continue
                for alias, entry in group.items():
                    if alias in state:
                        entry["value"] = state[alias]
                        entry["normalizedValue"] = state[alias]
            events.append(event_body)
        return json.dumps({event: events}).encode()

    @staticmethod
    def combined(*bodies: bytes) -> bytes:
        """Several deliveries' events in one POST, as Mautic's queued mode sends them (oldest first per type)."""
        merged: dict[str, list] = {}
        for body in bodies:
            for event_type, events in json.loads(body).items():
                merged.setdefault(event_type, []).extend(events)
        return json.dumps(merged).encode()

    # --- shapes -----------------------------------------------------------------------------------------------------
    def error_body(self, status: int) -> Any:
        return {"errors": [{"code": status, "message": f"Injected failure {status}", "details": [], "type": None}]}

    def _rest(self, contact: dict) -> dict:
        all_fields = {k: v for k, v in contact.items() if k not in ("date_added", "date_modified")}
        return {
            "id": contact["id"],
            "isPublished": True,
            "dateAdded": _iso(contact["date_added"]),
            "dateModified": _iso(contact["date_modified"]),
            "fields": {"all": all_fields},
        }

    def _handle(self, request: FakeRequest) -> FakeResponse | None:
        expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        if request.header("authorization") != expected:
            return FakeResponse(401, {"errors": [{"code": 401, "message": "API authorization denied.", "type": None}]})
        return super()._handle(request)

    # --- API --------------------------------------------------------------------------------------------------------
    @route("GET", r"/api/contacts")
    def contacts_list(self, request: FakeRequest):
        query = {key: values[0] for key, values in request.query.items()}
        with self.lock:
            found = list(self.contacts.values())
            index = 0
            while f"where[{index}][col]" in query:
                column, expression = query[f"where[{index}][col]"], query[f"where[{index}][expr]"]
                value = query.get(f"where[{index}][val]", "")
                found = [c for c in found if _matches(c.get(column), expression, value)]
                index += 1
            search = query.get("search", "")
            if search.startswith("email:"):  # the trap: a prefix match
                prefix = search.removeprefix("email:").lower()
                found = [c for c in found if str(c.get("email") or "").lower().startswith(prefix)]
            found.sort(key=lambda c: c["id"])
            start, limit = int(query.get("start", 0)), int(query.get("limit", 30))
            page = found[start : start + limit]
            if not page:
                return {"total": str(len(found)), "contacts": []}
            return {"total": str(len(found)), "contacts": {str(c["id"]): self._rest(c) for c in page}}

    @route("GET", r"/api/contacts/(?P<contact_id>\d+)")
    def contact_get(self, request: FakeRequest):
        with self.lock:
            contact = self.contacts.get(int(request.params["contact_id"]))
            if contact is None:
                return FakeResponse(404, self.error_body(404))
            return {"contact": self._rest(contact)}

    @route("POST", r"/api/contacts/new")
    def contact_new(self, request: FakeRequest):
        payload = request.json() or {}
        email = str(payload.get("email") or "")
        with self.lock:
            existing = next((c for c in self.contacts.values() if str(c["email"]).lower() == email.lower()), None)
            if existing is None:
                contact_id = self.add_contact(**{**payload, "email": email})
                return FakeResponse(201, {"contact": self._rest(self.contacts[int(contact_id)])})
            self.update_contact(str(existing["id"]), **{k: v for k, v in payload.items() if k != "email"})
            return {"contact": self._rest(existing)}

    @route("PATCH", r"/api/contacts/(?P<contact_id>\d+)/edit")
    def contact_patch(self, request: FakeRequest):
        return self._edit(request, replace=False)

    @route("PUT", r"/api/contacts/(?P<contact_id>\d+)/edit")
    def contact_put(self, request: FakeRequest):
        return self._edit(request, replace=True)

    def _edit(self, request: FakeRequest, *, replace: bool):
        contact_id = int(request.params["contact_id"])
        payload = request.json() or {}
        with self.lock:
            contact = self.contacts.get(contact_id)
            if contact is None:
                return FakeResponse(404, self.error_body(404))
            self.edits.append((request.method, contact_id, payload))
            if replace:  # the trap: PUT clears every field it does not name
                for alias in list(contact):
                    if alias not in ("id", "email", "date_added", "date_modified"):
                        contact[alias] = None
            self.update_contact(str(contact_id), **payload)
            return {"contact": self._rest(contact)}

    @route("POST", r"/api/emails/(?P<email_id>\d+)/contact/(?P<contact_id>\d+)/send")
    def email_send(self, request: FakeRequest):
        with self.lock:
            if int(request.params["contact_id"]) not in self.contacts:
                return FakeResponse(404, self.error_body(404))
            if self._email_failures:
                self._email_failures -= 1
                return {"success": False}  # the trap: 200 with a failure inside
            self.sent_emails.append((request.params["email_id"], request.params["contact_id"]))
            return {"success": True}


def _matches(actual: Any, expression: str, value: str) -> bool:
    if expression == "eq":
        if isinstance(actual, str) and isinstance(value, str):
            return actual.lower() == value.lower()  # MySQL's default collation is case-insensitive
        return str(actual) == str(value)
    if expression == "gte":
        return actual is not None and str(actual) >= value
    if expression == "isNull":
        return actual in (None, "")
    raise ValueError(f"the fake does not know where expression {expression!r}")
