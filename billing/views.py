"""The Stripe webhook endpoint: verify, store, answer. Processing happens in a task (billing.webhooks)."""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.client_address import client_ip_or_unknown
from integrations.payloads import MalformedPayload, json_body_parse, refusal_record

from . import webhooks
from .stripe_objects import stripe_event_problem

logger = logging.getLogger(__name__)

# Headers kept with each stored delivery (for support and replay); nothing else of the request is stored.
STORED_HEADERS = ("Content-Type", "Stripe-Signature", "User-Agent")


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """POST /api/webhooks/stripe. 400 for a missing, invalid or stale signature and for a signed body that is not a
    readable Stripe event (the reason logged and kept as a refused delivery, integrations/payloads.py), 413 for an
    oversized body, 200 once the delivery is durably stored. Never a 500 for bad input.

    The signature is checked here against the secret on dj-stripe's WebhookEndpoint row, whatever DEBUG says: unlike
    dj-stripe's own view, no request header can replace the secret (dj-stripe honours X-Djstripe-Webhook-Secret when
    DEBUG is on).
    """
    header = request.headers.get("Stripe-Signature", "")
    if not header:
        return _error(400, "missing Stripe-Signature header")
    if not header.isascii():
        # Stripe's header is ASCII (t=<digits>,v1=<hex>); anything else is not Stripe's, and stripe-python's
        # constant-time compare raises TypeError on non-ASCII text instead of saying "no match".
        return _error(400, "malformed Stripe-Signature header")
    limit = settings.BILLING_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "bad Content-Length")
    if declared > limit:
        return _error(413, "body too large")
    try:
        body = request.body
    except RequestDataTooBig:
        return _error(413, "body too large")
    if len(body) > limit:
        return _error(413, "body too large")

    endpoint = webhooks.webhook_endpoint_cached()
    if endpoint is None or not endpoint.secret:
        # Our configuration, not the sender's input: 503 makes Stripe retry once we are configured.
        logger.error("Stripe webhook received but no endpoint secret is configured (manage.py stripe_webhook_endpoint)")
        return _error(503, "webhook endpoint not configured")
    if not webhooks.signature_verify(payload=body, header=header, secret=endpoint.secret):
        logger.warning("Stripe webhook with an invalid or stale signature from %s", client_ip_or_unknown(request))
        return _error(400, "invalid signature")

    try:
        event = json_body_parse(body)
    except MalformedPayload as exc:
        refusal_record(provider="stripe", reason=str(exc), request=request)
        return _error(400, "malformed JSON")
    problem = stripe_event_problem(event)
    if problem:
        refusal_record(provider="stripe", reason=problem, request=request)
        return _error(400, "not a Stripe event")

    event_id, _ = webhooks.stripe_event_receive(
        body=body.decode("utf-8"),
        event=event,
        headers={name: request.headers[name] for name in STORED_HEADERS if name in request.headers},
        remote_ip=client_ip_or_unknown(request),
        endpoint=endpoint,
    )
    return JsonResponse({"received": event_id})
