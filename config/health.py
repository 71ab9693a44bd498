"""GET /healthz for monitors and load balancers: unauthenticated, 200 when healthy (status "ok", or "degraded" when
an advisory check fails), 503 when a check of the application itself fails.

- database: a `SELECT 1` answers.
- scheduler: django-q2's scheduler advances each schedule's `next_run` when it starts the job, so the most overdue
  `next_run` is how long the scheduler has been silent. Late by more than HEALTHZ_SCHEDULER_MAX_LAG, or no schedule
  installed at all, is unhealthy. The last finished task is reported alongside.
- queue: how long the longest-waiting due email has waited (the email queue runs every 2 minutes); more than
  HEALTHZ_QUEUE_MAX_AGE is unhealthy.
- integrations: an active alert about an outside system's configuration (integrations/alerts.py: Discord refuses
  the bot token, Discord hides message text), with the alert's kind and since when; it clears itself. It makes the
  status "degraded", still HTTP 200: the site serves, a monitor warns staff.

It says only what monitors need: no customer data, no configuration.
"""

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.client_address import (
    FORWARDED_HEADER_IGNORED,
    forwarded_header_ignored_note,
    forwarded_header_ignored_recently,
)

logger = logging.getLogger(__name__)

# Checks about an outside system's configuration: the application itself still serves, so a failing one makes the
# status "degraded" (HTTP 200, so a load balancer keeps the site) and a monitor reading `status` or the check warns.
ADVISORY = {"integrations", "client_address"}


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def _scheduler(now) -> dict:
    from django_q.models import Schedule, Success

    most_overdue = Schedule.objects.exclude(repeats=0).order_by("next_run").values_list("next_run", flat=True).first()
    last_task = Success.objects.order_by("-stopped").values_list("stopped", flat=True).first()
    result = {"last_task_finished_at": last_task.isoformat() if last_task else None}
    if most_overdue is None:
        return {**result, "ok": False, "error": "no schedules installed (manage.py install_schedules)"}
    lag = max(0.0, (now - most_overdue).total_seconds())
    return {**result, "ok": lag <= settings.HEALTHZ_SCHEDULER_MAX_LAG, "lag_seconds": round(lag)}


def _queue(now) -> dict:
    from automations.selectors import queue_oldest_due_at

    oldest = queue_oldest_due_at(now=now)
    age = (now - oldest).total_seconds() if oldest else 0.0
    return {"ok": age <= settings.HEALTHZ_QUEUE_MAX_AGE, "oldest_due_email_age_seconds": round(age)}


def _integrations() -> dict:
    from integrations.alerts import alerts_active

    alerts = [{"kind": a.kind, "since": a.first_seen_at.isoformat()} for a in alerts_active()]
    return {"ok": not alerts, "alerts": alerts}


@never_cache
@require_GET
def healthz(request):
    now = timezone.now()
    checks = {}
    for name, check in (
        ("database", _database),
        ("scheduler", lambda: _scheduler(now)),
        ("queue", lambda: _queue(now)),
        ("integrations", _integrations),
    ):
        try:
            checks[name] = check()
        except Exception as exc:  # a monitor must get an answer, not a 500 page
            logger.exception("healthz: %s check failed", name)
            checks[name] = {"ok": False, "error": type(exc).__name__}
    # Advice, not a failure (a monitor must not take the site out of rotation over it; ok stays true).
    if forwarded_header_ignored_note(request) or forwarded_header_ignored_recently():
        checks["client_address"] = {"ok": True, "warning": FORWARDED_HEADER_IGNORED}
    healthy = all(check["ok"] for name, check in checks.items() if name not in ADVISORY)
    degraded = not all(check["ok"] for check in checks.values())
    status = "unhealthy" if not healthy else "degraded" if degraded else "ok"
    return JsonResponse({"status": status, "checks": checks}, status=200 if healthy else 503)
