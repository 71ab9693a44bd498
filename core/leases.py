"""Leases on claimed work: renewed while the work runs, run out soon after the worker dies.

A worker that claims a row (a workflow run, an email batch) stamps `lease_expires_at = now + lease` in the claim's
transaction. While it works, `lease_kept(renew=..., lease_seconds=...)` calls `renew()` from a background thread every
third of the lease, so a long wait (a provider's Retry-After, another run's lock, a slow answer) keeps the claim. A
worker killed mid-work (SIGKILL, a lost machine) stops renewing: its lease runs out within `lease_seconds`, and the
next sweep of the schedule takes the row again. The thread has its own database connection (each write autocommits)
and closes it when the work ends.

`renew()` returns whether the row is still ours (an UPDATE filtered on our claim); False stops the renewals and sets
the event the context manager yields (`lost`), which the work checks to stop taking more under a claim it lost.
"""

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connections

logger = logging.getLogger(__name__)


@contextmanager
def lease_kept(*, renew: Callable[[], bool], lease_seconds: float, name: str) -> Iterator[threading.Event]:
    stop = threading.Event()
    lost = threading.Event()

    def renew_until_done() -> None:
        try:
            while not stop.wait(lease_seconds / 3):
                try:
                    if not renew():
                        logger.warning("The lease of %s is no longer ours; renewals stop", name)
                        lost.set()
                        return
                except Exception:  # a database hiccup: the next beat tries again before the lease runs out
                    logger.warning("Could not renew the lease of %s", name, exc_info=True)
        finally:
            connections.close_all()  # this thread's connections only (they are per thread)

    thread = threading.Thread(target=renew_until_done, name=f"lease {name}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join()
