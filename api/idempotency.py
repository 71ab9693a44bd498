"""`Idempotency-Key` on write endpoints: a tool that retries a POST gets the first answer back, and nothing acts twice.

The first request with a key stores its response in the same transaction as the action it performed (the unique
index on (principal, key) holds a concurrent retry until that transaction ends). A retry with the same method, path
and body gets the stored status and body back with `Idempotent-Replayed: true`. The same key with a different request
is refused with 422. A request that failed with an exception stores nothing, so it can be retried under its key.
"""

import functools
import hashlib
import json

from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response

from .models import IdempotencyRecord

HEADER = "Idempotency-Key"

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=str,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (a UUID, or an id of your own), at most 255 characters. A retry with the same key, "
        "method, path and body replays the first response instead of acting again; the same key with a different "
        "request is refused with 422."
    ),
)


class IdempotencyKeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was used for a different request."
    default_code = "idempotency_key_reused"


def principal_of(request) -> str:
    api_key = request.auth
    if api_key is not None and hasattr(api_key, "prefix"):
        return f"key:{api_key.prefix}"
    return f"user:{request.user.pk}"


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotent(handler):
    """Decorate an APIView's `post` so that the `Idempotency-Key` header makes it safe to retry."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER, "").strip()
        if not key:
            return handler(view, request, *args, **kwargs)
        if len(key) > 255:
            raise ValidationError({HEADER: "At most 255 characters."})
        principal = principal_of(request)
        fingerprint = _fingerprint(request)
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        principal=principal, key=key, request_fingerprint=fingerprint, response_status=0
                    )
            except IntegrityError:
                record = IdempotencyRecord.objects.get(principal=principal, key=key)
                if record.request_fingerprint != fingerprint:
                    raise IdempotencyKeyReused() from None
                return Response(
                    record.response_body, status=record.response_status, headers={"Idempotent-Replayed": "true"}
                )
            response = handler(view, request, *args, **kwargs)
            record.response_status = response.status_code
            record.response_body = getattr(response, "data", None)
            record.save(update_fields=["response_status", "response_body"])
            return response

    return wrapper


def idempotency_records_delete_older_than(*, before) -> int:
    """Keys are kept long enough for any sane retry (API_IDEMPOTENCY_KEY_HOURS), then forgotten."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=before).delete()
    return deleted
