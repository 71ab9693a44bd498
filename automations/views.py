"""The public unsubscribe page: works without login, from a signed link."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .models import EmailQueueItem
from .preference_links import preferences_url
from .services.suppressions import email_unsubscribe, email_unsubscribe_one_click, unsubscribe_token_read


# CSRF-exempt: RFC 8058 one-click unsubscribe is a POST from the mailbox provider, without our cookie or form. The
# signed token is what authorises it, and all it can do is stop emails to the address it was issued for.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    data = unsubscribe_token_read(token=token)
    if data is None:
        return render(request, "automations/unsubscribe.html", {"state": "invalid"}, status=400)
    customer_id = EmailQueueItem.objects.filter(pk=data.get("q")).values_list("customer_id", flat=True).first()
    context = {"email": data["e"], "preferences_url": preferences_url(customer_id=customer_id) if customer_id else ""}
    if request.method == "GET":
        # GET only asks: link scanners follow every link in an email and must not unsubscribe anyone.
        return render(request, "automations/unsubscribe.html", {**context, "state": "confirm"})
    if request.POST.get("List-Unsubscribe") == "One-Click":
        # RFC 8058: the mail app's one-click leaves the topic of that email, not all marketing (our own page's
        # button below sends no such field and still leaves everything, as the page says).
        topic = email_unsubscribe_one_click(token=token)
        if topic:
            return render(request, "automations/unsubscribe.html", {**context, "state": "topic_done", "topic": topic})
        return render(request, "automations/unsubscribe.html", {**context, "state": "done"})
    email_unsubscribe(token=token)
    return render(request, "automations/unsubscribe.html", {**context, "state": "done"})
