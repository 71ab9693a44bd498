"""POST /api/webhooks/stripe on the one incoming-webhook base view (integrations/webhooks/views.py): 400 for a
missing, invalid or stale signature and for a signed body that is not a readable Stripe event (kept as a refused
delivery), 413 for an oversized body, 503 without a configured endpoint secret, 200 once the delivery is durably
stored (store.py). Processing happens in a task (processing.py).

The signature is checked here against the secret on dj-stripe's WebhookEndpoint row, whatever DEBUG says: unlike
dj-stripe's own view, no request header can replace the secret (dj-stripe honours X-Djstripe-Webhook-Secret when
DEBUG is on).
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.client_address import client_ip_or_unknown
from integrations.webhooks.views import IncomingWebhookView, WebhookRefused

from ..stripe_objects import stripe_event_problem
from .endpoint import signature_verify, webhook_endpoint_cached
from .store import stripe_event_receive

# Headers kept with each stored delivery (for support and replay); nothing else of the request is stored.
STORED_HEADERS = ("Content-Type", "Stripe-Signature", "User-Agent")


class StripeWebhookView(IncomingWebhookView):
    provider = "stripe"

    def configuration_problem(self) -> str | None:
        self.endpoint = webhook_endpoint_cached()
        if self.endpoint is None or not self.endpoint.secret:
            return "no endpoint secret is configured (manage.py stripe_webhook_endpoint)"
        return None

    def max_body_bytes(self) -> int:
        return settings.BILLING_WEBHOOK_MAX_BYTES

    def signature_valid(self, request: HttpRequest, body: bytes) -> bool:
        header = request.headers.get("Stripe-Signature", "")
        if not header:
            raise WebhookRefused(400, "missing Stripe-Signature header")
        if not header.isascii():
            # Stripe's header is ASCII (t=<digits>,v1=<hex>); anything else is not Stripe's, and stripe-python's
            # constant-time compare raises TypeError on non-ASCII text instead of saying "no match".
            raise WebhookRefused(400, "malformed Stripe-Signature header")
        return signature_verify(payload=body, header=header, secret=self.endpoint.secret)

    def payload_problem(self, payload) -> str | None:
        return stripe_event_problem(payload)

    def accept(self, request: HttpRequest, body: bytes, payload: dict) -> HttpResponse:
        event_id, _ = stripe_event_receive(
            body=body.decode("utf-8"),
            event=payload,
            headers={name: request.headers[name] for name in STORED_HEADERS if name in request.headers},
            remote_ip=client_ip_or_unknown(request),
            endpoint=self.endpoint,
        )
        return JsonResponse({"received": event_id})
