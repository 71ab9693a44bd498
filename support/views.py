"""Discord's interactions endpoint: verify, then answer from the database (support/interactions.py)."""

import logging
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from integrations.payloads import MalformedPayload, json_body_parse, refusal_record

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


@csrf_exempt
@require_POST
def discord_interactions(request: HttpRequest) -> HttpResponse:
    if int(request.headers.get("Content-Length") or 0) > MAX_BODY_BYTES:
        return HttpResponse(status=413)
    body = request.body
    if not signature_valid(
        body=body,
        signature_hex=request.headers.get("X-Signature-Ed25519", ""),
        timestamp=request.headers.get("X-Signature-Timestamp", ""),
        public_key_hex=settings.DISCORD_PUBLIC_KEY,
    ):
        # Discord sends forged requests on purpose and removes the endpoint of an app that accepts one.
        return HttpResponse("invalid request signature", status=401, content_type="text/plain")
    try:
        payload = json_body_parse(body)
    except MalformedPayload as exc:
        refusal_record(provider="discord", reason=str(exc), request=request)
        return HttpResponse("malformed JSON", status=400, content_type="text/plain")
    try:
        answer = handle(payload)
    except MalformedInteraction as exc:
        refusal_record(provider="discord", reason=f"unreadable interaction: {exc}", request=request)
        return HttpResponse("unreadable interaction", status=400, content_type="text/plain")
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
        # A field of the wrong type deep in a signed payload (a string where Discord documents a list, ...): the
        # interaction cannot be read, and Discord is told so rather than seeing a 500. The traceback is logged.
        logger.exception("Signed interaction with a field of an unexpected shape")
        refusal_record(
            provider="discord", reason=f"unreadable interaction: {type(exc).__name__}: {exc}", request=request
        )
        return HttpResponse("unreadable interaction", status=400, content_type="text/plain")
    return JsonResponse(answer)
