"""The customer's page behind the emailed link that connects a Discord account to their ModReady account.

A plain page for a phone or a desktop, without JavaScript or anything loaded from elsewhere. GET only shows what
confirming would do (mail scanners follow links); the customer decides with one of two POST buttons (CSRF-checked).
Requests are limited per client address in the default cache (core/client_address.py reads the address): a shared
cache (CACHES) makes the limit hold across web processes, the in-process default per process. The token is signed and
names one `DiscordLinkRequest`; support.identity keeps it single use and short-lived.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from core.page_limits import client_over_page_limit

from . import identity

PAGE_REQUESTS_PER_WINDOW = 20
PAGE_WINDOW_SECONDS = 600

STATUS = {"confirm": 200, "confirmed": 200, "declined": 200, "expired": 410, "invalid": 400}


def _too_many(request: HttpRequest) -> bool:
    return client_over_page_limit(
        request, page="support:discord-link", limit=PAGE_REQUESTS_PER_WINDOW, window_seconds=PAGE_WINDOW_SECONDS
    )


def _page(request: HttpRequest, context: dict, status: int) -> HttpResponse:
    response = render(request, "support/discord_link.html", context, status=status)
    response["Cache-Control"] = "no-store"
    # The token is in the address: never send it to another site. Not "no-referrer": browsers then send `Origin: null`
    # with the page's own POST, which Django's CSRF check refuses (tests/browser/test_discord_link.py).
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response


@require_http_methods(["GET", "POST"])
def discord_link(request: HttpRequest, token: str) -> HttpResponse:
    if _too_many(request):
        response = _page(request, {"state": "slow_down"}, 429)
        response["Retry-After"] = str(PAGE_WINDOW_SECONDS)
        return response
    link = identity.link_request_from_token(token)
    state = identity.link_request_state(link)
    just_now = False
    if request.method == "POST" and state == "confirm":
        choice = request.POST.get("choice")
        if choice == "confirm":
            state = identity.link_request_confirm(request_id=link.pk)
        elif choice == "decline":
            state = identity.link_request_decline(request_id=link.pk)
        else:
            return _page(request, {"state": "confirm", "link": link, "choose": True}, 400)
        just_now = state in ("confirmed", "declined")
    context = {"state": state, "link": link, "just_now": just_now}
    if link is not None and state == "confirm":
        current = link.customer.discord_user_id
        context["replaces"] = current if current and current != link.discord_user_id else ""
    return _page(request, context, STATUS[state])
