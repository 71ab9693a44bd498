"""The edge for what Mautic sends us: every field we copy into our own data is checked here, from a webhook or from a
REST read alike.

Mautic lets a form, an import or an API user put almost anything in a field (an email of `"{'a': 1}"`, a
`javascript:` link in a URL field), and a webhook body is only as good as whoever holds the secret. A field that fails
its check is refused: left out of the fields we use, and named with the reason, so the delivery and the workflow run
can say what was refused. The rest of the contact still applies.

`contact_state_time` reads when the contact was last changed in Mautic (`dateModified`, or `dateAdded` for a contact
never modified since it was created: Mautic sets only `dateAdded` on creation), so a late or retried copy of an older
state never overwrites a newer one.
"""

import re
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

# Discord's invite links: the only links we store in the invite fields (https://discord.com/developers/docs/resources/invite).
DISCORD_INVITE_URL = re.compile(r"\Ahttps://(?:discord\.gg/|discord\.com/invite/)[A-Za-z0-9-]{2,64}\Z")
BOOLEAN_TEXT = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
TEXT_LIMITS = {"firstname": 100, "lastname": 100, "promo_code": 64}
EMAIL_MAX = 254
INVITE_LINK_FIELDS = ("discord_invite_link_vip", "discord_invite_link_basic")
BOOLEAN_FIELDS = ("opt_in_confirmed", "vip_status")


class RefusedField(ValueError):
    pass


def _plain_text(alias: str, value: Any, limit: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RefusedField(f"expected text, got {type(value).__name__}")
    text = str(value).strip()
    if len(text) > limit:
        raise RefusedField(f"longer than {limit} characters")
    if "\x00" in text or any(0xD800 <= ord(char) <= 0xDFFF for char in text):
        raise RefusedField("contains a NUL or an unpaired surrogate")
    return text


def _boolean(value: Any) -> bool:
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in BOOLEAN_TEXT:
        return BOOLEAN_TEXT[value.strip().lower()]
    raise RefusedField(f"expected a yes/no value, got {str(value)[:40]!r}")


def _email(value: Any) -> str:
    text = _plain_text("email", value, EMAIL_MAX)
    if text:
        try:
            validate_email(text)
        except ValidationError:
            raise RefusedField(f"not an email address: {text[:60]!r}") from None
    return text


def _invite_link(value: Any) -> str:
    text = _plain_text("link", value, 200)
    if text and not DISCORD_INVITE_URL.match(text):
        raise RefusedField(
            f"not a Discord invite link (https://discord.gg/... or https://discord.com/invite/...): {text[:60]!r}"
        )
    return text


def clean_field(alias: str, value: Any) -> Any:
    """The value as we store it, or RefusedField."""
    if alias == "email":
        return _email(value)
    if alias in BOOLEAN_FIELDS:
        return _boolean(value)
    if alias in INVITE_LINK_FIELDS:
        return _invite_link(value)
    if alias in TEXT_LIMITS:
        return _plain_text(alias, value, TEXT_LIMITS[alias])
    return value


CHECKED_FIELDS = ("email", *BOOLEAN_FIELDS, *INVITE_LINK_FIELDS, *TEXT_LIMITS)


def contact_fields_clean(fields: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Returns (fields we use, refusals as "alias: reason"). Fields we do not read are dropped: nothing unchecked is
    kept (a run's input is stored as JSON, where a NaN or a NUL would not even save)."""
    clean: dict[str, Any] = {}
    refused: list[str] = []
    for alias in CHECKED_FIELDS:
        if alias not in fields:
            continue
        try:
            clean[alias] = clean_field(alias, fields[alias])
        except RefusedField as exc:
            refused.append(f"{alias}: {exc}")
    return clean, refused


def contact_state_time(contact: dict[str, Any]) -> datetime | None:
    """`dateModified`, else `dateAdded`, as aware UTC; None when Mautic sent neither. Raises ValueError when either is
    there but is not an ISO 8601 date (Mautic sends `2025-08-20T09:41:02+00:00`)."""
    for key in ("dateModified", "dateAdded"):
        value = contact.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value) > 40:
            raise ValueError(f"{key} is not a date")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{key} is not a date: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)  # Mautic keeps dates in UTC
        return parsed.astimezone(UTC)
    return None


CONTACT_ID = re.compile(r"\A[1-9][0-9]{0,17}\Z")


def contact_id_clean(value: Any) -> str:
    """Mautic's contact ids are positive integers, sent as numbers or (often) as strings."""
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not CONTACT_ID.match(text):
        raise ValueError(f"contact.id is not a contact id: {text[:30]!r}")
    return text
