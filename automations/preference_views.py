"""The customer's email preference page: reached from the link in every marketing email (`preferences_url`,
automations/preference_links.py), no login. The customer sees the topics, turns each on or off, or leaves all
marketing (and may join again); each change is a consent record (customers.consent). A plain form: no JavaScript,
readable on a phone, in the company's look (templates/customer_page.html); limited per client address
(core/page_limits.py) like the other pages reached by signed links.
"""

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from core.page_limits import client_over_page_limit
from customers.consent import (
    consent_record_add,
    customer_marketing_set,
    customer_topic_set,
    topic_choices,
    topics_offered,
)
from customers.models import ConsentSource, Customer
from customers.time_zones import zone_info

from .email_state import block_reason, suppressions_by_address
from .preference_links import preferences_token_read
from .send_gates import quiet_hours
from .services.suppressions import unsubscribe_lift

PAGE_REQUESTS_PER_WINDOW = 30
PAGE_WINDOW_SECONDS = 600
ACTIONS = ("save", "leave", "join")


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "same-origin"  # the token is in the address: never send it to another site
    response["X-Robots-Tag"] = "noindex"
    return response


def _page(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    return _private(render(request, "automations/preferences.html", context, status=status))


@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    if client_over_page_limit(
        request, page="automations:preferences", limit=PAGE_REQUESTS_PER_WINDOW, window_seconds=PAGE_WINDOW_SECONDS
    ):
        response = _page(request, {"state": "slow_down"}, status=429)
        response["Retry-After"] = str(PAGE_WINDOW_SECONDS)
        return response
    customer_id = preferences_token_read(token=token)
    customer = Customer.objects.filter(pk=customer_id).first() if customer_id is not None else None
    if customer is None or not customer.email:
        return _page(request, {"state": "invalid"}, status=400)
    saved = ""
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action not in ACTIONS:
            return _page(request, {"state": "bad_request"}, status=400)
        saved = _apply(customer, action=action, chosen=set(request.POST.getlist("topic")))
        customer.refresh_from_db()
    return _page(request, _context(customer, saved=saved))


@transaction.atomic
def _apply(customer: Customer, *, action: str, chosen: set[str]) -> str:
    """Apply the form; every change is one consent record. Returns what the page confirms."""
    details = {"page": "preferences"}
    source = ConsentSource.PREFERENCE_PAGE
    if action == "leave":
        customer_marketing_set(customer=customer, opt_in=False, source=source, details=details)
        return "left"
    if action == "join":
        record = customer_marketing_set(customer=customer, opt_in=True, source=source, details=details)
        # Their own unsubscribe from an old link was the same wish as leaving: joining again lifts it. A bounce, a
        # complaint or staff's suppression stays (the page says so).
        lifted = unsubscribe_lift(email=customer.email)
        if record is None and lifted:
            details = {**details, "lifted": "unsubscribe suppression"}
            consent_record_add(
                customer=customer, topic=None, opt_in=True, source=source, details=details, actor=None, reason=""
            )
        return "joined"
    for topic in topics_offered():
        customer_topic_set(
            customer=customer, topic=topic, subscribed=topic.slug in chosen, source=source, details=details
        )
    return "saved"


def _context(customer: Customer, *, saved: str) -> dict:
    topics = topics_offered()
    choices = topic_choices(customer=customer, topics=topics)
    reasons = suppressions_by_address([customer.email]).get(customer.email.lower(), set())
    held = block_reason(marketing=True, opt_in_confirmed=True, suppression_reasons=reasons - {"unsubscribe"})
    hours = quiet_hours()
    return {
        "state": "subscribed" if customer.opt_in_confirmed and "unsubscribe" not in reasons else "left",
        "saved": saved,
        "email": customer.email,
        "topics": [{"topic": topic, "on": choices[topic.pk]} for topic in topics],
        "held": held.removeprefix("Blocked: ") if held else "",
        "quiet_hours": f"{hours[0]:02d}:00 and {hours[1]:02d}:00" if hours else "",
        "time_zone": zone_info(customer.time_zone).key,
        "cap": settings.MARKETING_FREQUENCY_CAP,
        "cap_days": round(settings.MARKETING_FREQUENCY_CAP_HOURS / 24, 1),
    }
