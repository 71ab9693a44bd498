"""Helper of bench/stripe_ingest.py (not a benchmark): the app's URLs plus the two comparison endpoints.

- bench/djstripe/<uuid>: dj-stripe's stock ProcessWebhookView (verifies, stores and processes synchronously,
  re-fetching from Stripe inside the request). Mounted only in the benchmark, never by config.urls.
- bench/bare: the ceiling: verify the signature and insert one row, nothing else.
"""

import stripe
from django.db import connection
from django.http import HttpResponse, HttpResponseBadRequest
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from djstripe.views import ProcessWebhookView

from config.urls import urlpatterns as app_urlpatterns

BARE_TABLE = "bench_bare_delivery"
_secret: list[str] = []


@csrf_exempt
def bare_webhook(request):
    if not _secret:
        from billing.stripe_webhook.endpoint import webhook_endpoint_get

        _secret.append(webhook_endpoint_get().secret)
    try:
        stripe.WebhookSignature.verify_header(
            request.body.decode(), request.headers.get("Stripe-Signature", ""), _secret[0], 300
        )
    except stripe.SignatureVerificationError:
        return HttpResponseBadRequest()
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {BARE_TABLE} (body) VALUES (%s)", [request.body.decode()])  # noqa: S608
    return HttpResponse("ok")


urlpatterns = [
    *app_urlpatterns,
    path("bench/djstripe/<uuid:uuid>", ProcessWebhookView.as_view()),
    path("bench/bare", bare_webhook),
]


def main(argv: list[str]) -> None:
    print("bench/stripe_urls.py is a helper of `bin/bench stripe_ingest`, not a benchmark.")
