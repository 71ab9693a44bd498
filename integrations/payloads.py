"""Reading a signed webhook body, and keeping the ones we refuse.

A correctly signed body can still be unreadable: not JSON, not the shape the provider documents, numbers that do not
fit (`1e400` parses as infinity, a 40-digit integer overflows every column), text PostgreSQL cannot store (`\\u0000`),
or nesting deep enough to exhaust the parser's recursion. The incoming-webhook base view
(integrations/webhooks/views.py) parses every body with `json_body_parse` and answers 400 for `MalformedPayload`,
after `refusal_record` has logged the reason and stored the delivery (admin: Integrations -> Refused webhook
deliveries). Only bodies whose signature checked out are stored, so nobody without the provider's secret can fill
the table.
"""

import json
import logging
import math
from typing import Any

from django.http import HttpRequest

from core.client_address import client_ip_or_unknown

from .models import RefusedWebhook

logger = logging.getLogger(__name__)

MAX_DEPTH = 64  # Stripe's deepest expanded objects and Discord's nested components stay well under this
MAX_INTEGER = 2**63 - 1  # bigint, the widest column anything is stored in
STORED_BODY_BYTES = 64 * 1024
STORED_HEADERS = (
    "Content-Type",
    "User-Agent",
    "Stripe-Signature",
    "svix-id",
    "svix-timestamp",
    "X-Signature-Timestamp",
)


class MalformedPayload(ValueError):
    """A signed body we cannot accept; the message says why, in words for the admin."""


def _refuse_constant(name: str) -> Any:
    raise MalformedPayload(f"not a JSON number: {name}")


def json_body_parse(body: bytes) -> Any:
    """The JSON value of `body`, or MalformedPayload: not UTF-8, not JSON, NaN/Infinity, a number out of range, a NUL
    character, or nested deeper than MAX_DEPTH."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPayload("the body is not UTF-8") from exc
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise MalformedPayload("the JSON is nested too deeply") from exc
    except MalformedPayload:
        raise
    except ValueError as exc:  # JSONDecodeError, and an integer of more than 4,300 digits
        raise MalformedPayload(f"not JSON ({str(exc)[:100]})") from exc
    problem = _value_problem(value)
    if problem:
        raise MalformedPayload(problem)
    return value


def _value_problem(value: Any) -> str | None:
    """Walks the parsed value without recursion (a deep value cannot exhaust the stack here)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"the JSON is nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return "a NUL character in a key"
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "a NUL character in a text value"
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_INTEGER:
                return f"an integer out of range ({str(item)[:20]}…)"
        elif isinstance(item, float) and not math.isfinite(item):
            return "a number out of range (it would be infinite)"
    return None


def refusal_record(*, provider: str, reason: str, request: HttpRequest) -> RefusedWebhook:
    """Log and keep a signed delivery that was answered 400 (the first 64 KB of its body, a few headers)."""
    logger.warning("Refused a signed %s webhook: %s", provider, reason)
    body = request.body
    headers = {
        name: request.headers[name].replace("\x00", "")[:500] for name in STORED_HEADERS if name in request.headers
    }
    return RefusedWebhook.objects.create(
        provider=provider,
        reason=reason[:300],
        headers=headers,
        body=bytes(body[:STORED_BODY_BYTES]),
        body_bytes=len(body),
        remote_ip=client_ip_or_unknown(request)[:64],
    )
