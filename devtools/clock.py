"""The time the code sees, and the one seam that lets seed_demo replay history "as of" past moments.

Production code reads the time from `django.utils.timezone.now()`: our services, Django's `auto_now` and
`auto_now_add` fields, dj-stripe and django-q2 all do. `as_of(moment)` makes that function return `moment` for
the duration of a `with` block, so everything written inside carries the time production would have written had the
work happened then. Only seed_demo uses it, in its own process (bin/run runs it before the server and the cluster
start); nothing in a web request or a task does.

Why not a `clock.now()` called by the services: the timestamps that matter for a replayed history are also written
by code we do not call (`created_at` fields, dj-stripe's mirror, django-q2's task rows), so a seam in our services
alone would leave half of every row at today's date. Replacing the one function all of them read is smaller and
cannot be forgotten by the next service written.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.utils import timezone

_real_now = timezone.now
_state = threading.local()


def _now() -> datetime:
    anchor = getattr(_state, "anchor", None)
    if anchor is None:
        return _real_now()
    moment, started = anchor
    # The replayed clock runs on from `moment` as real time passes, so work that waits for something due in a few
    # seconds sees it fall due, and two things done one after the other are stamped in that order.
    return moment + timedelta(seconds=time.monotonic() - started)


def now() -> datetime:
    """The current time as the code sees it (the wall clock outside `as_of`)."""
    return timezone.now()


@contextmanager
def as_of(moment: datetime) -> Iterator[None]:
    """Run the block as if it began at `moment` (timezone-aware). Blocks nest; the previous clock comes back after."""
    if timezone.is_naive(moment):
        raise ValueError("as_of needs a timezone-aware moment")
    previous = getattr(_state, "anchor", None)
    _state.anchor = (moment, time.monotonic())
    timezone.now = _now
    try:
        yield
    finally:
        _state.anchor = previous
        if previous is None:
            timezone.now = _real_now


def wall_clock() -> datetime:
    """The real time, even inside `as_of` (seed_demo decides what "today" is with it)."""
    return _real_now()
