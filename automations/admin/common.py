"""Small helpers the automations admin pages share."""

from django.contrib import messages
from django.urls import reverse
from django.utils.html import format_html

from ..models import SendingPause


def database_id(value: str) -> int | None:
    """A primary key from a query string, or None: "abc", "²" or a number past bigint must not reach the database."""
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def pause_banner(request) -> None:
    """On the queue and analytics pages: sending is paused, why, and where to resume it."""
    for pause in SendingPause.objects.all():
        messages.error(
            request,
            format_html(
                "Sending through {} is paused since {} UTC: {}. Emails stay queued; a probe call every "
                'minute resumes it, or <a href="{}">resume it now</a> once the cause is fixed.',
                pause.provider,
                f"{pause.paused_at:%Y-%m-%d %H:%M}",
                pause.cause,
                reverse("admin:automations_sendingpause_changelist"),
            ),
        )
