"""The hosted cancel page (the link the API answers): GET shows the step the session is at, POST takes the reason or
the choice and redirects back (303), so a reload never re-submits. Plain HTML forms, no JavaScript, the company's
look (templates/customer_page.html), limited per client address (core/page_limits.py).

Steps: the reason and a comment; then the offer for that reason with what each choice does to the server and its
data (or, with no offer, the cancellation to confirm); then what was done. The choice is recorded once with the
Stripe change it leads to, which is sent right after; a reload of a change Stripe has not answered yet sends it
again, under the same key, with the same parameters.
"""

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from core.page_limits import client_over_page_limit

from .changes import change_send
from .models import REASON_CHOICES, CancelSession, ChangeStatus
from .page_words import choice_words
from .sessions import (
    CancelSessionRefused,
    cancel_refusal,
    cancel_session_decide,
    cancel_session_reason_give,
    cancel_session_token_read,
)

PAGE_REQUESTS_PER_WINDOW = 40
PAGE_WINDOW_SECONDS = 600
STATUS = {"invalid": 400, "expired": 410, "missing": 404, "slow_down": 429}


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "same-origin"  # the token is in the address
    response["X-Robots-Tag"] = "noindex"
    return response


def _page(request: HttpRequest, state: str, *, status: int = 200, **context) -> HttpResponse:
    context = {"state": state, "reasons": REASON_CHOICES, **context}
    response = _private(render(request, "billing/cancel.html", context, status=STATUS.get(state, status)))
    if state == "slow_down":
        response["Retry-After"] = str(PAGE_WINDOW_SECONDS)
    return response


def _session_page(request: HttpRequest, session: CancelSession, *, error: str = "", status: int = 200) -> HttpResponse:
    context = {"session": session, "error": error, "subscription": session.subscription}
    if session.outcome:
        return _page(request, f"done_{session.change.status}", words=choice_words(session, session.outcome), **context)
    problem = cancel_refusal(session.subscription)
    if problem:
        return _page(request, "nothing_to_cancel", problem=problem, **context)
    if not session.reason or request.GET.get("step") == "reason":
        return _page(request, "reason", status=status, **context)
    offer = choice_words(session, "accepted") if session.offer_shown else None
    return _page(request, "offer", offer=offer, cancel=choice_words(session, "canceled"), status=status, **context)


@require_http_methods(["GET", "POST"])
def cancel_page(request: HttpRequest, token: str) -> HttpResponse:
    if client_over_page_limit(
        request, page="billing:cancel", limit=PAGE_REQUESTS_PER_WINDOW, window_seconds=PAGE_WINDOW_SECONDS
    ):
        return _page(request, "slow_down")
    link = cancel_session_token_read(token)
    if link.state != "valid":
        return _page(request, link.state)
    session = CancelSession.objects.select_related("subscription", "change").filter(pk=link.id).first()
    if session is None:
        return _page(request, "missing")
    if request.method == "POST":
        return _submit(request, session)
    if session.change and session.change.status == ChangeStatus.APPLYING:
        change_send(change_id=session.change.pk)  # a reload asks again, under the same key
        session.change.refresh_from_db()
    return _session_page(request, session)


def _submit(request: HttpRequest, session: CancelSession) -> HttpResponse:
    step = request.POST.get("step")
    try:
        if step == "reason":
            cancel_session_reason_give(
                session_id=session.pk,
                reason=request.POST.get("reason", ""),
                comment=request.POST.get("comment", ""),
            )
        elif step == "decide":
            decided = cancel_session_decide(session_id=session.pk, choice=request.POST.get("choice", ""))
            # cancel_session_decide has committed (no request-wide transaction): the change may leave now.
            change_send(change_id=decided.change_id)
        else:
            raise CancelSessionRefused("Choose one of the options on the page.")
    except CancelSessionRefused as exc:
        session.refresh_from_db()
        return _session_page(request, session, error=str(exc), status=400)
    response = HttpResponseRedirect(request.path)
    response.status_code = 303
    return _private(response)
