"""A fake EspoCRM (REST API under /api/v1 with X-Api-Key) on 127.0.0.1: Leads.

    with FakeEspoCrm() as espo:
        espo.add_lead(email="ada@example.com")
        espo.search_misses = True     # searches find nothing (an index lagging behind), so a create meets the 409
        espo.duplicate_body = "full"  # 409 bodies with each record's whole value map (default: id and name only)

Traps kept (docs/providers.md): EspoCRM's duplicate check for a person
(`application/Espo/Classes/DuplicateWhereBuilders/Person.php`) matches a lead with the same first *and* last name
(when the new one has either) **or** the same email address; a create that meets one answers 409 with
`X-Status-Reason: duplicate` and a JSON array of the suspected records, unless `X-Skip-Duplicate-Check: true`. So
the 409 may name a different person who only shares a name. Some EspoCRM versions list only `id` and `name` of
each record (the default here), others the whole record.
"""

import itertools
import secrets
from typing import Any

from devtools.fakes.server import FakeRequest, FakeResponse, FakeServer, route

API_KEY = "fake-espocrm-api-key"


class FakeEspoCrm(FakeServer):
    name = "espocrm"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.leads: dict[str, dict] = {}
        self.search_misses = False
        self.duplicate_body = "id_name"
        self._seq = itertools.count(1)

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.leads.clear()
            self.search_misses = False
            self.duplicate_body = "id_name"

    def add_lead(self, *, email: str, firstName: str = "", lastName: str = "", **fields: Any) -> str:
        lead_id = secrets.token_hex(8)[:17]
        name = f"{firstName} {lastName}".strip()
        with self.lock:
            self.leads[lead_id] = {
                "id": lead_id,
                "emailAddress": email,
                "firstName": firstName,
                "lastName": lastName,
                "name": name,
                **fields,
            }
        return lead_id

    def duplicates_of(self, *, email: str, first_name: str, last_name: str) -> list[dict]:
        """EspoCRM's Person duplicate check: the same first and last name (when either is given), or the same email."""

        def same(a: Any, b: Any) -> bool:  # MySQL's default collation compares case-insensitively
            return str(a or "").strip().lower() == str(b or "").strip().lower()

        with self.lock:
            return [
                lead
                for lead in self.leads.values()
                if (email and same(lead["emailAddress"], email))
                or (
                    (first_name or last_name)
                    and same(lead.get("firstName"), first_name)
                    and same(lead.get("lastName"), last_name)
                )
            ]

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

    @route("GET", r"/api/v1/Lead/(?P<lead_id>[0-9a-zA-Z]+)")
    def lead_read(self, request: FakeRequest):
        with self.lock:
            found = self.leads.get(request.params["lead_id"])
        if found is None:
            return FakeResponse(404, body=b"", headers={"X-Status-Reason": "Record not found"})
        return dict(found)

    @route("POST", r"/api/v1/Lead")
    def lead_create(self, request: FakeRequest):
        payload = request.json() or {}
        email = str(payload.get("emailAddress") or "")
        first, last = str(payload.get("firstName") or ""), str(payload.get("lastName") or "")
        with self.lock:  # re-entrant: the check and the insert are one step here (in EspoCRM they are not)
            existing = self.duplicates_of(email=email, first_name=first, last_name=last)
            if existing and request.header("x-skip-duplicate-check").lower() != "true":
                if self.duplicate_body == "full":
                    body = [dict(lead) for lead in existing]
                else:
                    body = [{"id": lead["id"], "name": lead["name"]} for lead in existing]
                return FakeResponse(409, body, headers={"X-Status-Reason": "duplicate"})
            rest = {k: v for k, v in payload.items() if k not in ("emailAddress", "firstName", "lastName")}
            lead_id = self.add_lead(email=email, firstName=first, lastName=last, **rest)
            return dict(self.leads[lead_id])
