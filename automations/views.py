"""The public unsubscribe page: works without login, from a signed link."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .services.suppressions import email_unsubscribe, unsubscribe_token_read


# CSRF-exempt: RFC 8058 one-click unsubscribe is a POST from the mailbox provider, without our cookie or form. The
# signed token is what authorises it, and all it can do is stop emails to the address it was issued for.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    data = unsubscribe_token_read(token=token)
    if data is None:
        return render(request, "automations/unsubscribe.html", {"state": "invalid"}, status=400)
    if request.method == "GET":
        # GET only asks: link scanners follow every link in an email and must not unsubscribe anyone.
        return render(request, "automations/unsubscribe.html", {"state": "confirm", "email": data["e"]})
    email_unsubscribe(token=token)
    return render(request, "automations/unsubscribe.html", {"state": "done", "email": data["e"]})
