"""EspoCRM's REST API (https://docs.espocrm.com/development/api/): find, read or create a Lead by email.

EspoCRM's duplicate check for a person (`application/Espo/Classes/DuplicateWhereBuilders/Person.php`) matches the
same first and last name **or** the same email address, and answers 409 (`X-Status-Reason: duplicate`) with the
suspected records (https://docs.espocrm.com/development/api/#duplicate-check). A record that shares only a name is
another person: we take a suspected record only when its email address equals ours (case-insensitive), and
otherwise create with `X-Skip-Duplicate-Check: true`. No last name is made up from the email's local part: two
people `sam@a.example` and `sam@b.example` would then "duplicate" each other.
"""

import json
from dataclasses import dataclass

from django.conf import settings

from core.configuration import provider_require
from integrations.http import ApiClient, ProviderError, json_or_error


class EspoCrmError(ProviderError):
    provider = "espocrm"

    @classmethod
    def from_response(cls, response):
        error = super().from_response(response)
        if response.status_code == 409:  # the suspected records, whole: a cut JSON array could not be read
            error.body = response.text[:500_000]
        return error


@dataclass
class Lead:
    id: str
    emails: list[str]  # lower-cased: the primary address and any others the lead holds

    def has_email(self, email: str) -> bool:
        return email.strip().lower() in self.emails


def lead_from(record: dict) -> Lead:
    emails = [str(record.get("emailAddress") or "")]
    emails += [str(entry.get("emailAddress") or "") for entry in record.get("emailAddressData") or []]
    return Lead(id=str(record["id"]), emails=[e.strip().lower() for e in emails if e.strip()])


class EspoCrmClient(ApiClient):
    error_class = EspoCrmError

    @classmethod
    def from_settings(cls) -> "EspoCrmClient":
        provider_require("EspoCRM")
        return cls(base_url=settings.ESPOCRM_BASE_URL, headers={"X-Api-Key": settings.ESPOCRM_API_KEY})

    def lead_find_by_email(self, email: str) -> str | None:
        params = {
            "where[0][type]": "equals",
            "where[0][attribute]": "emailAddress",
            "where[0][value]": email,
            "maxSize": 5,
        }
        data = json_or_error(self.request("lead.find", "GET", "/api/v1/Lead", params=params), EspoCrmError, "lead.find")
        for record in data.get("list") or []:
            if lead_from(record).has_email(email):
                return str(record["id"])
        return None

    def lead_get(self, lead_id: str) -> Lead | None:
        """The lead with this id, or None when EspoCRM has none (deleted, or never there)."""
        try:
            response = self.request("lead.get", "GET", f"/api/v1/Lead/{lead_id}")
        except EspoCrmError as exc:
            if exc.status in (403, 404):  # EspoCRM answers 403 for a record the API user may not read
                return None
            raise
        return lead_from(json_or_error(response, EspoCrmError, "lead.get"))

    def lead_create(self, *, email: str, first_name: str = "", last_name: str = "", source: str = "", description=""):
        """Returns (lead id, created). A 409 duplicate answer is taken only for a record with our email address;
        one that names only people who share a name is answered by creating the lead without the check."""
        payload = {
            "emailAddress": email,
            "firstName": first_name,
            "lastName": last_name,
            "source": source,
            "description": description,
        }
        try:
            response = self.request("lead.create", "POST", "/api/v1/Lead", json=payload)
        except EspoCrmError as exc:
            suspects = _duplicates(exc)
            if not suspects:
                raise
            for record in suspects:
                # Some EspoCRM versions list only id and name: read the record to see its address.
                lead = lead_from(record) if "emailAddress" in record else self.lead_get(str(record["id"]))
                if lead is not None and lead.has_email(email):
                    return lead.id, False
            response = self.request(
                "lead.create", "POST", "/api/v1/Lead", json=payload, headers={"X-Skip-Duplicate-Check": "true"}
            )
        return json_or_error(response, EspoCrmError, "lead.create")["id"], True

    def lead_ensure(self, *, email: str, **fields) -> tuple[str, bool]:
        """Find the lead by email or create it. Returns (lead id, created)."""
        lead_id = self.lead_find_by_email(email)
        if lead_id:
            return lead_id, False
        return self.lead_create(email=email, **fields)


def _duplicates(error: EspoCrmError) -> list[dict]:
    """The records a 409 duplicate answer suspects (empty for any other error)."""
    if error.status != 409:
        return []
    try:
        records = json.loads(error.body)
    except ValueError:
        return []
    if isinstance(records, dict):
        records = records.get("list") or []
    return [record for record in records if isinstance(record, dict) and record.get("id")]
