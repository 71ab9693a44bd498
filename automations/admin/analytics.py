"""The email analytics page: its period and rule from the query string, and its chart (inline SVG)."""

from datetime import datetime, time, timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils import timezone

from core.charts import daily_lines

from .. import selectors
from ..models import AutomationRule
from .common import database_id, pause_banner


def analytics_view(model_admin, request):
    if not request.user.has_perms(["automations.view_automationrule", "automations.view_emailqueueitem"]):
        raise PermissionDenied
    pause_banner(request)
    since_day, until_day, rule_id, problems = _analytics_parameters(request.GET, today=timezone.now().date())
    for problem in problems:
        messages.warning(request, problem)
    since = timezone.make_aware(datetime.combine(since_day, time.min))
    until = timezone.make_aware(datetime.combine(until_day + timedelta(days=1), time.min))
    analytics = selectors.email_analytics(since=since, until=until, rule_id=rule_id)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Email analytics",
        "analytics": analytics,
        "chart": daily_lines(analytics.days),
        "rules": AutomationRule.objects.filter(sends_broadcast=False).order_by("name"),
        "rule_id": rule_id,
        "since": since_day,
        "until": until_day,
    }
    return TemplateResponse(request, "admin/automations/analytics.html", context)


ANALYTICS_MAX_DAYS = 366  # one query over a year of sent emails; a wider range held a worker for 30 s


def _analytics_parameters(params, *, today):
    """The page's period and rule from the query string, each bad value replaced by a default and explained."""
    problems = []
    since_day = _parse_day(params.get("since"))
    until_day = _parse_day(params.get("until"))
    if params.get("since") and since_day is None:
        problems.append(f"{params['since'][:40]!r} is not a date (YYYY-MM-DD); showing the default period.")
    if params.get("until") and until_day is None:
        problems.append(f"{params['until'][:40]!r} is not a date (YYYY-MM-DD); showing up to today.")
    if until_day is None or until_day > today:
        if until_day is not None:
            problems.append("The period cannot end in the future; showing up to today.")
        until_day = today
    since_day = since_day or until_day - timedelta(days=29)
    if since_day > until_day:
        problems.append("The start date was after the end date; they have been swapped.")
        since_day, until_day = until_day, since_day
    if (until_day - since_day).days + 1 > ANALYTICS_MAX_DAYS:
        since_day = until_day - timedelta(days=ANALYTICS_MAX_DAYS - 1)
        problems.append(f"A period is at most {ANALYTICS_MAX_DAYS} days; showing from {since_day:%Y-%m-%d}.")
    rule_id = None
    raw_rule = params.get("rule") or ""
    if raw_rule:
        rule_id = database_id(raw_rule)
        if rule_id is None or not AutomationRule.objects.filter(pk=rule_id).exists():
            problems.append(f"No rule {raw_rule[:40]!r}; showing all rules.")
            rule_id = None
    return since_day, until_day, rule_id, problems


def _parse_day(value):
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
