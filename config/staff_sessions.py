"""Ending a staff member's sessions: when they enrol a two-factor device, every other session of theirs (a
password-only login on another browser, a stolen cookie) ends, so only sessions that gave a code remain."""

from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.utils import timezone


def user_sessions_end(*, user, keep_session_key: str | None = None) -> int:
    """Delete every live session of `user` except `keep_session_key`; returns how many ended.

    Sessions are stored signed, not indexed by user, so each live one is decoded: a back-office has a few dozen.
    Deleting through the session engine's store also clears a cached copy (cached_db)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.session_key == keep_session_key:
            continue
        if str(session.get_decoded().get(SESSION_KEY)) == str(user.pk):
            store(session_key=session.session_key).delete()
            ended += 1
    return ended
