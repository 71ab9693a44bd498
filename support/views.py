"""Discord's interactions endpoint: verify, then answer from the database (support/interactions.py)."""

import json
import logging
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

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
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return HttpResponse("malformed JSON", status=400, content_type="text/plain")
    try:
        answer = handle(payload)
    except MalformedInteraction as exc:
        logger.info("Refused a signed but unreadable interaction: %s", exc)
        return HttpResponse("unreadable interaction", status=400, content_type="text/plain")
    return JsonResponse(answer)
