"""Mautic's contact webhooks (https://docs.mautic.org/en/5.2/configuration/webhooks.html).

A delivery is `{"<event type>": [{"contact": {...}, "timestamp": ...}, ...], ...}`, possibly several types and
events in one POST, signed with `Webhook-Signature` = base64(HMAC-SHA256(secret, raw body)). Mautic sends no event
id, does not retry a non-2xx answer, disables the webhook after 100 failures in a row, and in its default mode waits
for our answer while saving the contact (15 s). So the view only verifies, checks the shape, stores and answers;
everything else runs in tasks.

Fields arrive as `contact.fields.<group>.<alias>.value` (groups core, social, personal, professional; an empty group
is `[]`); there is no `fields.all` in a webhook.
"""

import base64
import hashlib
import hmac
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from integrations.payloads import MalformedPayload
from integrations.webhooks.store import body_digest, inbound_webhook_reject, kept_headers
from integrations.webhooks.views import StoredWebhookView

from .fields import contact_fields_clean, contact_id_clean, contact_state_time

logger = logging.getLogger(__name__)

PROVIDER = "mautic"
CONTACT_EVENTS = ("mautic.lead_post_save_update", "mautic.lead_post_save_new")


class MalformedDelivery(MalformedPayload):
    pass


@dataclass
class ContactEvent:
    event_type: str
    contact_id: str
    fields: dict[str, Any]  # checked (fields.py); refused ones are left out
    as_of: datetime | None  # when Mautic last changed the contact (dateModified, else dateAdded)
    refused: list[str] = field(default_factory=list)


def signature_valid(body: bytes, signature: str, secret: str) -> bool:
    if not secret or not signature:
        return False
    try:
        given = signature.strip().encode("ascii")
    except UnicodeEncodeError:  # a header with non-ASCII characters is no base64 signature (and compare_digest
        return False  # refuses non-ASCII str)
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, given)


def _refuse_constant(name: str) -> None:
    raise MalformedDelivery(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedDelivery(f"number out of range: {text[:30]}")
    return value


def printable(text: str) -> str:
    """Text that PostgreSQL can store whatever the sender put in it (no NUL, no unpaired surrogate)."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def parse_delivery(body: bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no number too large for a float or too long for an int, no nesting deep enough to
    exhaust the stack. Raises MalformedDelivery with the reason."""
    try:
        return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except MalformedDelivery:
        raise
    except RecursionError:
        raise MalformedDelivery("nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an int over Python's digit limit
        raise MalformedDelivery(f"not JSON: {exc}"[:200]) from None


def contact_fields(contact: dict) -> dict[str, Any]:
    """Flatten `fields.<group>.<alias>.value` into {alias: value}; groups that are `[]` hold nothing."""
    flat: dict[str, Any] = {}
    groups = contact.get("fields")
    if groups in (None, []):
        return flat
    if not isinstance(groups, dict):
        raise MalformedDelivery("contact.fields is not an object of field groups")
    for name, group in groups.items():
        if group == []:
            continue
        if not isinstance(group, dict):
            raise MalformedDelivery(f"contact.fields.{str(name)[:40]} is not a field group")
        for alias, entry in group.items():
            flat[alias] = entry.get("value") if isinstance(entry, dict) else entry
    return flat


def contacts_in(payload: Any) -> list[ContactEvent]:
    """Every contact event in a delivery, fields checked. Raises MalformedDelivery when the shape is wrong: then
    nothing of the delivery applies. A single field that fails its check is refused (named in `refused`)."""
    if not isinstance(payload, dict) or not payload:
        raise MalformedDelivery("expected an object keyed by event type")
    found = []
    for event_type, events in payload.items():
        if not isinstance(events, list):
            raise MalformedDelivery(f"{event_type[:60]}: expected a list of events")
        if event_type not in CONTACT_EVENTS:
            continue  # other webhook types (form submits, ...) are accepted and ignored
        for event in events:
            contact = event.get("contact") if isinstance(event, dict) else None
            if not isinstance(contact, dict) or contact.get("id") in (None, ""):
                raise MalformedDelivery(f"{event_type}: an event without contact.id")
            try:
                contact_id = contact_id_clean(contact["id"])
                as_of = contact_state_time(contact)
            except ValueError as exc:
                raise MalformedDelivery(f"{event_type}: {exc}") from None
            fields, refused = contact_fields_clean(contact_fields(contact))
            fields["id"] = contact_id
            found.append(ContactEvent(event_type, contact_id, fields, as_of, refused))
    return found


class MauticWebhookView(StoredWebhookView):
    """POST /api/webhooks/mautic: verify, check the shape, store (deduplicated on a digest of the body) and answer
    202 (200 for a repeat); the contacts are applied in a task (integrations/workflows/contact_invite.py)."""

    provider = PROVIDER
    bad_signature_status = 401

    def enabled(self) -> bool:
        return settings.MAUTIC_ENABLED

    def configuration_problem(self) -> str | None:
        return None if settings.MAUTIC_WEBHOOK_SECRET else "MAUTIC_WEBHOOK_SECRET is not set"

    def max_body_bytes(self) -> int:
        return settings.MAUTIC_WEBHOOK_MAX_BYTES

    def signature_valid(self, request: HttpRequest, body: bytes) -> bool:
        return signature_valid(body, request.headers.get("Webhook-Signature", ""), settings.MAUTIC_WEBHOOK_SECRET)

    def parse(self, request: HttpRequest, body: bytes) -> list[ContactEvent]:
        return contacts_in(parse_delivery(body))

    def refuse(self, request: HttpRequest, body: bytes, reason: str) -> None:
        # Signed, so it came from whoever holds the secret: kept (not processed) for staff to see why it was refused.
        reason = printable(f"malformed: {reason}")[:500]
        logger.warning("Mautic webhook refused (400): %s", reason)
        inbound_webhook_reject(
            provider=PROVIDER,
            dedupe_key=body_digest(body),
            headers=kept_headers({k.lower(): v for k, v in request.headers.items()}),
            body=body,
            reason=reason,
        )

    def refused_fields(self, payload: list[ContactEvent]) -> list[str]:
        refused = [printable(f"contact {event.contact_id}: {reason}") for event in payload for reason in event.refused]
        if refused:
            logger.warning("Mautic webhook: fields refused: %s", "; ".join(refused)[:1000])
        return refused
