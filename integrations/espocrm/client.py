"""EspoCRM's REST API (https://docs.espocrm.com/development/api/): find or create a Lead by email.

A suspected duplicate answers 409 with `X-Status-Reason: duplicate` and a body listing the existing records
(https://docs.espocrm.com/development/api/#duplicate-check): we take the existing id.
"""

import json

from django.conf import settings

from integrations import config
from integrations.http import ApiClient, ProviderError, json_or_error


class EspoCrmError(ProviderError):
    provider = "espocrm"


class EspoCrmClient(ApiClient):
    error_class = EspoCrmError

    @classmethod
    def from_settings(cls) -> "EspoCrmClient":
        config.require("ESPOCRM_ENABLED")
        return cls(base_url=settings.ESPOCRM_BASE_URL, headers={"X-Api-Key": settings.ESPOCRM_API_KEY})

    def lead_find_by_email(self, email: str) -> str | None:
        params = {
            "where[0][type]": "equals",
            "where[0][attribute]": "emailAddress",
            "where[0][value]": email,
            "maxSize": 5,
        }
        data = json_or_error(self.request("lead.find", "GET", "/api/v1/Lead", params=params), EspoCrmError, "lead.find")
        found = data.get("list") or []
        return found[0]["id"] if found else None

    def lead_create(self, *, email: str, first_name: str = "", last_name: str = "", source: str = "", description=""):
        """Returns (lead id, created). A 409 duplicate answer names the existing lead, which we take."""
        payload = {
            "emailAddress": email,
            "firstName": first_name,
            "lastName": last_name or email.split("@")[0],
            "source": source,
            "description": description,
        }
        try:
            response = self.request("lead.create", "POST", "/api/v1/Lead", json=payload)
        except EspoCrmError as exc:
            existing = _duplicates(exc)
            if existing:
                return existing[0], False
            raise
        return json_or_error(response, EspoCrmError, "lead.create")["id"], True

    def lead_ensure(self, *, email: str, **fields) -> tuple[str, bool]:
        """Find the lead by email or create it. Returns (lead id, created)."""
        lead_id = self.lead_find_by_email(email)
        if lead_id:
            return lead_id, False
        return self.lead_create(email=email, **fields)


def _duplicates(error: EspoCrmError) -> list[str]:
    if error.status != 409:
        return []
    try:
        records = json.loads(error.body)
    except ValueError:
        return []
    if isinstance(records, dict):
        records = records.get("list") or []
    return [record["id"] for record in records if isinstance(record, dict) and record.get("id")]
