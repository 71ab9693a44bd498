"""The one base view for every incoming webhook (Stripe, Mautic, Resend, Discord), in the manner of django-anymail's
`AnymailBaseWebhookView`: each provider's package subclasses it and fills in a few hooks.

    POST -> enabled?                       no: 404
         -> configured?                    no: 503 (our configuration, not the sender's input; providers retry)
         -> body within max_body_bytes?    no: 413 (the declared Content-Length first, then the bytes read)
         -> signature_valid(request, body) no: bad_signature_status (401 or 400, as the provider documents)
         -> parse(request, body)           MalformedPayload: 400, the refusal kept (refuse())
         -> ending:                        (any hook may raise WebhookRefused(status, message) to refuse)
              StoredWebhookView.accept:   store once per (provider, dedupe key), process in a task -> 2xx
              AnsweredWebhookView.accept: answer(request, payload) now (Discord interactions, Resend tracking)

Every refusal has one shape: `{"error": "<why>"}` with a 4xx status (503 when unconfigured), never a 500.
"""

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from integrations.payloads import MalformedPayload, json_body_parse, refusal_record

from . import store

logger = logging.getLogger(__name__)


def refusal(status: int, message: str) -> JsonResponse:
    """The one error shape of every incoming webhook."""
    return JsonResponse({"error": message}, status=status)


class WebhookRefused(Exception):
    """Raised by any hook to answer a refusal of its own (status, message) in the one error shape."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class UnreadablePayload(MalformedPayload):
    """A signed body that parsed but that the provider's code could not read (raised by `answer`): a 400."""


@method_decorator(csrf_exempt, name="dispatch")
class IncomingWebhookView(View):
    http_method_names = ["post"]
    provider: str = ""
    bad_signature_status = 400

    # --- hooks a provider fills in ------------------------------------------------------------------------------

    def enabled(self) -> bool:
        return True

    def configuration_problem(self) -> str | None:
        """Why the endpoint cannot check signatures right now (a missing secret), or None."""
        return None

    def max_body_bytes(self) -> int:
        raise NotImplementedError

    def signature_valid(self, request: HttpRequest, body: bytes) -> bool:
        raise NotImplementedError

    def payload_problem(self, payload: Any) -> str | None:
        """Why a parsed, signed body is not one of the provider's events, or None."""
        return None

    def refuse(self, request: HttpRequest, body: bytes, reason: str) -> None:
        """Keep a signed delivery answered 400 (integrations.RefusedWebhook unless the provider keeps it itself)."""
        refusal_record(provider=self.provider, reason=reason, request=request)

    def accept(self, request: HttpRequest, body: bytes, payload: Any) -> HttpResponse:
        raise NotImplementedError

    # --- the pipeline ----------------------------------------------------------------------------------------------

    def parse(self, request: HttpRequest, body: bytes) -> Any:
        payload = json_body_parse(body)
        problem = self.payload_problem(payload)
        if problem:
            raise MalformedPayload(problem)
        return payload

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return self._pipeline(request)
        except WebhookRefused as exc:
            return refusal(exc.status, exc.message)

    def _pipeline(self, request: HttpRequest) -> HttpResponse:
        if not self.enabled():
            return refusal(404, "not enabled")
        problem = self.configuration_problem()
        if problem:
            logger.error("%s webhook refused with 503: %s", self.provider, problem)
            return refusal(503, "webhook endpoint not configured")
        body = self._body_within_limit(request)
        if body is None:
            return refusal(413, "body too large")
        if not self.signature_valid(request, body):
            logger.warning("%s webhook with a missing or invalid signature", self.provider)
            return refusal(self.bad_signature_status, "invalid signature")
        try:
            payload = self.parse(request, body)
            return self.accept(request, body, payload)
        except MalformedPayload as exc:
            reason = str(exc)
            self.refuse(request, body, reason)
            return refusal(400, f"malformed: {reason}"[:200])

    def _body_within_limit(self, request: HttpRequest) -> bytes | None:
        limit = self.max_body_bytes()
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise WebhookRefused(400, "bad Content-Length") from None
        if declared > limit:
            return None
        try:
            body = request.body
        except RequestDataTooBig:
            return None
        return body if len(body) <= limit else None


class StoredWebhookView(IncomingWebhookView):
    """Ending (a): store the delivery once per (provider, dedupe key), answer 2xx, process in a task
    (integrations/webhooks/store.py; the provider registers its processor with `@webhook_processor`)."""

    def dedupe_key(self, request: HttpRequest, body: bytes, payload: Any) -> str:
        """The provider's event id; by default a digest of the body (for providers that send no id)."""
        return store.body_digest(body)

    def refused_fields(self, payload: Any) -> list[str]:
        return []

    def accept(self, request: HttpRequest, body: bytes, payload: Any) -> HttpResponse:
        delivery, created = store.inbound_webhook_store(
            provider=self.provider,
            dedupe_key=self.dedupe_key(request, body, payload),
            headers=store.kept_headers({k.lower(): v for k, v in request.headers.items()}),
            body=body,
            refused_fields=self.refused_fields(payload),
        )
        return JsonResponse({"delivery": delivery.pk, "duplicate": not created}, status=202 if created else 200)


class AnsweredWebhookView(IncomingWebhookView):
    """Ending (b): answer now, from the request (Discord interactions, Resend tracking). `answer` raises
    UnreadablePayload (or MalformedPayload) for a signed body it cannot read: a 400, kept as a refusal."""

    def answer(self, request: HttpRequest, payload: Any) -> HttpResponse:
        raise NotImplementedError

    def accept(self, request: HttpRequest, body: bytes, payload: Any) -> HttpResponse:
        return self.answer(request, payload)
