"""The customer's card-update link (billing/card_update_links.py builds it): a GET that creates a Stripe customer
portal session on the payment-method flow and redirects there (303). The click is the customer's request to update
their card, so the link itself acts; everything else (an expired or changed link, a customer Stripe does not know,
Stripe not answering) shows a plain page that says what the link does and what to do instead.

A plain page for a phone or a desktop, without JavaScript or anything loaded from elsewhere, in the look of the other
customer pages (support/link_views.py, automations/views.py). Requests are limited per client address in the default
cache like the Discord-link page: each click costs a Stripe call.
"""

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.page_limits import client_over_page_limit
from customers.models import Customer

from .card_update_links import card_update_return_url, card_update_token_read
from .stripe_api import StripePortalError, portal_session_for_card_update

logger = logging.getLogger(__name__)

PAGE_REQUESTS_PER_WINDOW = 20
PAGE_WINDOW_SECONDS = 600
RETRY_AFTER_SECONDS = 60

STATUS = {"invalid": 400, "expired": 410, "no_card_account": 404, "retry": 503, "slow_down": 429, "done": 200}


def _too_many(request: HttpRequest) -> bool:
    return client_over_page_limit(
        request, page="billing:card-update", limit=PAGE_REQUESTS_PER_WINDOW, window_seconds=PAGE_WINDOW_SECONDS
    )


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    # The token is in the address: never send it to another site.
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response


def _page(request: HttpRequest, state: str) -> HttpResponse:
    response = _private(render(request, "billing/card_update.html", {"state": state}, status=STATUS[state]))
    if state == "retry":
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    elif state == "slow_down":
        response["Retry-After"] = str(PAGE_WINDOW_SECONDS)
    return response


@require_GET
def card_update(request: HttpRequest, token: str) -> HttpResponse:
    if _too_many(request):
        return _page(request, "slow_down")
    link = card_update_token_read(token)
    if link.state != "valid":
        return _page(request, link.state)
    stripe_customer_id = Customer.objects.filter(pk=link.id).values_list("stripe_customer_id", flat=True).first()
    if not stripe_customer_id:
        return _page(request, "no_card_account")
    try:
        url = portal_session_for_card_update(stripe_customer_id=stripe_customer_id, return_url=card_update_return_url())
    except StripePortalError as exc:
        if exc.missing_customer:
            return _page(request, "no_card_account")
        logger.warning("Card-update link: %s (status %s) for customer %s", exc, exc.status, link.id)
        return _page(request, "retry")
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return _private(response)


@require_GET
def card_update_done(request: HttpRequest) -> HttpResponse:
    """Where Stripe's portal sends the customer back (unless BILLING_CARD_UPDATE_RETURN_URL says otherwise)."""
    return _page(request, "done")
