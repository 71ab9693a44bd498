"""A fake EspoCRM (REST API under /api/v1 with X-Api-Key) on 127.0.0.1: Leads.

    with FakeEspoCrm() as espo:
        espo.add_lead(email="ada@example.com")
        espo.search_misses = True     # searches find nothing (an index lagging behind), so a create meets the 409

Trap kept (docs/providers.md): creating a lead whose email is already taken answers 409 with
`X-Status-Reason: duplicate` and a JSON array of the existing records, unless `X-Skip-Duplicate-Check: true`.
"""

import itertools
import secrets
from typing import Any

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer, route

API_KEY = "fake-espocrm-api-key"


class FakeEspoCrm(FakeServer):
    name = "espocrm"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.leads: dict[str, dict] = {}
        self.search_misses = False
        self._seq = itertools.count(1)

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.leads.clear()
            self.search_misses = False

    def add_lead(self, *, email: str, **fields: Any) -> str:
        lead_id = secrets.token_hex(8)[:17]
        with self.lock:
            self.leads[lead_id] = {"id": lead_id, "emailAddress": email, "name": email, **fields}
        return lead_id

    def leads_for(self, email: str) -> list[dict]:
        with self.lock:
            return [lead for lead in self.leads.values() if str(lead["emailAddress"]).lower() == email.lower()]

    def error_body(self, status: int) -> Any:
        return None

    def _handle(self, request: FakeRequest) -> FakeResponse | None:
        if request.header("x-api-key") != API_KEY:
            return FakeResponse(401, body=b"", headers={"X-Status-Reason": "Unauthorized"})
        return super()._handle(request)

    @route("GET", r"/api/v1/Lead")
    def lead_list(self, request: FakeRequest):
        query = {key: values[0] for key, values in request.query.items()}
        found = list(self.leads.values())
        if query.get("where[0][type]") == "equals" and query.get("where[0][attribute]") == "emailAddress":
            found = self.leads_for(query.get("where[0][value]", ""))
        if self.search_misses:
            found = []
        return {"total": len(found), "list": found[: int(query.get("maxSize", 20))]}

    @route("POST", r"/api/v1/Lead")
    def lead_create(self, request: FakeRequest):
        payload = request.json() or {}
        email = str(payload.get("emailAddress") or "")
        with self.lock:
            existing = self.leads_for(email) if email else []
            if existing and request.header("x-skip-duplicate-check").lower() != "true":
                return FakeResponse(409, existing, headers={"X-Status-Reason": "duplicate"})
            lead_id = self.add_lead(email=email, **{k: v for k, v in payload.items() if k != "emailAddress"})
            return dict(self.leads[lead_id])
