"""Mautic's REST API (https://developer.mautic.org/#rest-api), the calls the crowdfunding workflows need.

The traps, each handled here once:
- Exact email search is `where[0][col]=email&where[0][expr]=eq`; `search=email:` is a prefix match.
- A contact list is keyed by contact id, `total` is a string, and an empty result may be `[]` instead of `{}`.
- Edits are `PATCH /api/contacts/{id}/edit`; `PUT` on the same URL clears every field it does not name.
- Sending an email answers 200 even when the send failed: `success` in the body is the answer.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings

from core.configuration import provider_require
from integrations.http import ApiClient, ProviderError, json_or_error

from .fields import contact_state_time


class MauticError(ProviderError):
    provider = "mautic"


@dataclass
class MauticContact:
    id: str
    fields: dict[str, Any] = field(default_factory=dict)  # alias -> value (REST contacts carry `fields.all`)
    modified_at: datetime | None = None  # Mautic's dateModified (dateAdded for a contact never modified)

    @property
    def email(self) -> str:
        return (self.fields.get("email") or "").strip()

    def text(self, alias: str) -> str:
        return str(self.fields.get(alias) or "").strip()

    def flag(self, alias: str) -> bool:
        return field_is_true(self.fields.get(alias))


def field_is_true(value: Any) -> bool:
    """Mautic boolean fields arrive as 1/0, "1"/"0", true/false or "yes"/"no" depending on the path."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return isinstance(value, int) and bool(value)  # a list or an object is no "yes" (bool is an int)


def contact_from_rest(data: dict) -> MauticContact:
    fields = (data.get("fields") or {}).get("all") or {}
    try:
        modified_at = contact_state_time(data)
    except ValueError:
        modified_at = None  # unknown: whoever compares states treats it as such
    return MauticContact(id=str(data.get("id") or fields.get("id")), fields=dict(fields), modified_at=modified_at)


class MauticClient(ApiClient):
    error_class = MauticError

    @classmethod
    def from_settings(cls) -> "MauticClient":
        provider_require("Mautic")
        client = cls(base_url=settings.MAUTIC_BASE_URL)
        client.session.auth = (settings.MAUTIC_USERNAME, settings.MAUTIC_PASSWORD)
        return client

    def _json(self, call: str, method: str, path: str, **kwargs) -> Any:
        return json_or_error(self.request(call, method, path, **kwargs), MauticError, call)

    def contact_get(self, contact_id: str) -> MauticContact:
        data = self._json("contacts.get", "GET", f"/api/contacts/{contact_id}")
        return contact_from_rest(data["contact"])

    def contacts_where(self, filters: list[tuple[str, str, str]], *, start: int = 0, limit: int = 100) -> list:
        """Contacts matching every (column, expression, value) filter, e.g. ("email", "eq", address)."""
        params: dict[str, Any] = {"start": start, "limit": limit, "orderBy": "id", "orderByDir": "asc"}
        for index, (column, expression, value) in enumerate(filters):
            params[f"where[{index}][col]"] = column
            params[f"where[{index}][expr]"] = expression
            params[f"where[{index}][val]"] = value
        data = self._json("contacts.list", "GET", "/api/contacts", params=params)
        contacts = data.get("contacts") or {}
        if isinstance(contacts, list):  # an empty result arrives as []
            return [contact_from_rest(item) for item in contacts]
        return [contact_from_rest({"id": key, **item}) for key, item in contacts.items()]

    def contact_find_by_email(self, email: str) -> MauticContact | None:
        matches = self.contacts_where([("email", "eq", email)], limit=5)
        exact = [c for c in matches if c.email.lower() == email.strip().lower()]
        return min(exact, key=lambda c: int(c.id)) if exact else None

    def contact_create(self, *, email: str, fields: dict[str, Any] | None = None) -> MauticContact:
        """`POST /api/contacts/new` updates the contact with the same email instead of making a second one, so it is
        safe to retry."""
        data = self._json(
            "contacts.new", "POST", "/api/contacts/new", json={"email": email, **(fields or {})}, idempotent=True
        )
        return contact_from_rest(data["contact"])

    def contact_edit(self, contact_id: str, fields: dict[str, Any]) -> MauticContact:
        """PATCH only: PUT would clear every field not named. Setting the same values again is harmless."""
        data = self._json("contacts.edit", "PATCH", f"/api/contacts/{contact_id}/edit", json=fields, idempotent=True)
        return contact_from_rest(data["contact"])

    def email_send(self, *, email_id: str, contact_id: str, tokens: dict[str, str] | None = None) -> None:
        """Send a Mautic email to one contact. Not retried here: a lost answer may mean a sent email."""
        call = "emails.send"
        body = {"tokens": tokens} if tokens else {}
        data = self._json(call, "POST", f"/api/emails/{email_id}/contact/{contact_id}/send", json=body)
        if not (isinstance(data, dict) and data.get("success") is True):
            raise MauticError(status=200, body=f"Mautic did not send the email: {str(data)[:300]}", call=call)
