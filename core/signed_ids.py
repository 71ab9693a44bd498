"""Signed ids for links we put in emails and pages: one place for how a row's id is signed into a URL token and read
back, so every link checks its signature, salt and age the same way.

Two kinds, both signed with SECRET_KEY and checked against SECRET_KEY_FALLBACKS (a key rotation keeps links working):

- `id_token_make` / `id_token_read`: the id in base 62, signed, without a timestamp. The same bytes every time (a
  re-sent email is byte for byte the first), no expiry of its own: the link's lifetime, if any, lives in the row it
  names. The preference, unsubscribe and Discord-link tokens.
- `timed_id_token_make` / `timed_id_token_read`: `signing.dumps({key: id})`, time-stamped, read with a maximum age,
  so the reader can tell an expired link from a forged one. The card-update and cancel-session links.

The formats are exactly those the links were first sent with, so tokens already in customers' mailboxes stay valid.
"""

from dataclasses import dataclass

from django.core import signing


@dataclass(frozen=True)
class TimedIdToken:
    state: str  # "valid", "expired" or "invalid"
    id: int | None = None


def id_token_make(*, salt: str, id: int) -> str:
    return signing.Signer(salt=salt).sign(signing.b62_encode(id))


def id_token_read(*, salt: str, token: str) -> int | None:
    """The id a token of ours names, None for anything else (tampered, truncated, another salt)."""
    try:
        return signing.b62_decode(signing.Signer(salt=salt).unsign(token))
    except (signing.BadSignature, ValueError):
        return None


def timed_id_token_make(*, salt: str, key: str, id: int) -> str:
    return signing.dumps({key: id}, salt=salt, compress=False)


def timed_id_token_read(*, salt: str, key: str, token: str, max_age_seconds: float) -> TimedIdToken:
    try:
        data = signing.loads(token, salt=salt, max_age=max_age_seconds)
    except signing.SignatureExpired:
        return TimedIdToken("expired")
    except signing.BadSignature:
        return TimedIdToken("invalid")
    value = data.get(key) if isinstance(data, dict) else None
    # bool is an int too; an id never is one.
    if not isinstance(value, int) or isinstance(value, bool):
        return TimedIdToken("invalid")
    return TimedIdToken("valid", value)
