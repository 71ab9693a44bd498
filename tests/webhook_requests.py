"""Signed incoming-webhook requests built from the provider event fixtures (tests/fixtures/<provider>/<event>.json),
each with the provider's real signature scheme, for every webhook test to post."""

import json
import uuid
from pathlib import Path

from devtools.fakes.discord.interactions import sign_interaction
from devtools.fakes.mautic import WEBHOOK_SECRET as MAUTIC_SECRET
from devtools.fakes.mautic import sign as mautic_sign
from devtools.fakes.resend import SIGNING_SECRET as RESEND_SECRET
from devtools.fakes.resend import svix_sign
from devtools.fakes.stripe.objects import signature_header

FIXTURES = Path(__file__).parent / "fixtures"
STRIPE_SECRET = "whsec_test_" + "a" * 32  # what tests/billing/conftest.py configures on the endpoint row


def event_fixture(provider: str, event: str) -> dict:
    """A provider's event exactly as the fixture holds it (a fresh copy every call)."""
    return json.loads((FIXTURES / provider / f"{event}.json").read_text())


def _stripe(body: bytes, secret: str | None) -> dict[str, str]:
    return {"Stripe-Signature": signature_header(body, secret or STRIPE_SECRET)}


def _mautic(body: bytes, secret: str | None) -> dict[str, str]:
    return {"Webhook-Signature": mautic_sign(body, secret or MAUTIC_SECRET)}


def _resend(body: bytes, secret: str | None) -> dict[str, str]:
    return svix_sign(body, secret=secret or RESEND_SECRET, msg_id=f"msg_{uuid.uuid5(uuid.NAMESPACE_OID, body.hex())}")


def _discord(body: bytes, secret: str | None) -> dict[str, str]:
    from nacl.signing import SigningKey

    if secret:
        return sign_interaction(body, key=SigningKey(bytes.fromhex(secret)))
    return sign_interaction(body)


# A secret of the right form that is not ours, per provider: what a forger signs with.
FORGED_SECRETS = {
    "stripe": "whsec_forged_" + "f" * 32,
    "mautic": "forged-mautic-secret",
    "resend": "whsec_" + "QUJD" * 8,
    "discord": "11" * 32,  # an Ed25519 seed: a key pair that is not the application's
}

SIGNERS = {"stripe": _stripe, "mautic": _mautic, "resend": _resend, "discord": _discord}


def signature_headers(provider: str, body: bytes, *, secret: str | None = None) -> dict[str, str]:
    """The headers the provider signs `body` with (with our test secret, or with `secret` to forge one)."""
    return SIGNERS[provider](body, secret)


def as_meta(headers: dict[str, str]) -> dict[str, str]:
    """Request headers as the Django test client's extra WSGI environ."""
    return {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}


def post_signed(client, provider: str, path: str, body: bytes, *, headers: dict[str, str] | None = None):
    """POST `body` as the provider would: signed, unless `headers` replaces the signature headers."""
    signed = signature_headers(provider, body) if headers is None else headers
    return client.post(path, data=body, content_type="application/json", **as_meta(signed))
