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
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.webhooks import body_digest, kept_headers, webhook_delivery_store

PROVIDER = "mautic"
CONTACT_EVENTS = ("mautic.lead_post_save_update", "mautic.lead_post_save_new")


class MalformedDelivery(ValueError):
    pass


def signature_valid(body: bytes, signature: str, secret: str) -> bool:
    if not secret or not signature:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, signature.strip())


def contact_fields(contact: dict) -> dict[str, Any]:
    """Flatten `fields.<group>.<alias>.value` into {alias: value}; groups that are `[]` hold nothing."""
    flat: dict[str, Any] = {}
    groups = contact.get("fields") or {}
    if not isinstance(groups, dict):
        return flat
    for group in groups.values():
        if not isinstance(group, dict):
            continue
        for alias, entry in group.items():
            flat[alias] = entry.get("value") if isinstance(entry, dict) else entry
    return flat


def contacts_in(payload: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(event type, contact id, fields) for every contact event in a delivery. Raises MalformedDelivery."""
    if not isinstance(payload, dict) or not payload:
        raise MalformedDelivery("expected an object keyed by event type")
    found = []
    for event_type, events in payload.items():
        if not isinstance(events, list):
            raise MalformedDelivery(f"{event_type}: expected a list of events")
        if event_type not in CONTACT_EVENTS:
            continue  # other webhook types (form submits, ...) are accepted and ignored
        for event in events:
            contact = event.get("contact") if isinstance(event, dict) else None
            if not isinstance(contact, dict) or contact.get("id") in (None, ""):
                raise MalformedDelivery(f"{event_type}: an event without contact.id")
            fields = contact_fields(contact)
            fields.setdefault("id", contact["id"])
            found.append((event_type, str(contact["id"]), fields))
    return found


@csrf_exempt
@require_POST
def mautic_webhook(request: HttpRequest) -> JsonResponse:
    if not settings.MAUTIC_ENABLED:
        return JsonResponse({"error": "not enabled"}, status=404)
    body = request.body
    if len(body) > settings.MAUTIC_WEBHOOK_MAX_BYTES:
        return JsonResponse({"error": "too large"}, status=413)
    if not signature_valid(body, request.headers.get("Webhook-Signature", ""), settings.MAUTIC_WEBHOOK_SECRET):
        return JsonResponse({"error": "bad signature"}, status=401)
    try:
        contacts_in(json.loads(body))
    except (ValueError, MalformedDelivery) as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return JsonResponse({"error": f"malformed: {exc}"[:200]}, status=400)
    delivery, created = webhook_delivery_store(
        provider=PROVIDER,
        dedupe_key=body_digest(body),
        headers=kept_headers({k.lower(): v for k, v in request.headers.items()}),
        body=body,
    )
    return JsonResponse({"delivery": delivery.pk, "duplicate": not created}, status=202 if created else 200)
