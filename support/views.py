"""Discord's interactions endpoint: verify, then answer from the database (support/interactions.py)."""

import logging
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from integrations.webhooks.views import AnsweredWebhookView, UnreadablePayload

from .interactions import MalformedInteraction, handle

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # interactions are a few kilobytes


@lru_cache(maxsize=4)
def _verify_key(public_key_hex: str) -> VerifyKey:
    return VerifyKey(bytes.fromhex(public_key_hex))


def signature_valid(*, body: bytes, signature_hex: str, timestamp: str, public_key_hex: str) -> bool:
    """Ed25519 over timestamp + raw body with the application's public key
    (https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint-validating-security-request-headers)."""
    if not (signature_hex and timestamp and public_key_hex):
        return False
    try:
        _verify_key(public_key_hex).verify(timestamp.encode() + body, bytes.fromhex(signature_hex))
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


class DiscordInteractionsView(AnsweredWebhookView):
    """POST /api/discord/interactions, answered now (within Discord's 3 seconds) on the one incoming-webhook base
    view. Without a public key nothing can be verified: 503, our configuration's fault, like every unconfigured
    incoming webhook."""

    provider = "discord"
    bad_signature_status = 401  # Discord sends forged requests on purpose and removes an app that accepts one

    def configuration_problem(self) -> str | None:
        return None if settings.DISCORD_PUBLIC_KEY else "DISCORD_PUBLIC_KEY is not set"

    def max_body_bytes(self) -> int:
        return MAX_BODY_BYTES

    def signature_valid(self, request: HttpRequest, body: bytes) -> bool:
        return signature_valid(
            body=body,
            signature_hex=request.headers.get("X-Signature-Ed25519", ""),
            timestamp=request.headers.get("X-Signature-Timestamp", ""),
            public_key_hex=settings.DISCORD_PUBLIC_KEY,
        )

    def answer(self, request: HttpRequest, payload) -> HttpResponse:
        try:
            return JsonResponse(handle(payload))
        except MalformedInteraction as exc:
            raise UnreadablePayload(f"unreadable interaction: {exc}") from exc
        except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
            # A field of the wrong type deep in a signed payload (a string where Discord documents a list, ...): the
            # interaction cannot be read, and Discord is told so rather than seeing a 500. The traceback is logged.
            logger.exception("Signed interaction with a field of an unexpected shape")
            raise UnreadablePayload(f"unreadable interaction: {type(exc).__name__}: {exc}") from exc
