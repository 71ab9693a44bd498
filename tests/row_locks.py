"""A row held FOR UPDATE by another connection while a test's block runs: what a concurrent worker's transaction
looks like to the code under test (it needs a transactional test, so the other connection sees the row)."""

import threading
from contextlib import contextmanager

from django.db import connections, transaction


@contextmanager
def row_locked_elsewhere(instance):
    """Hold `instance`'s row locked from another thread (its own connection) until the block ends."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                type(instance).objects.select_for_update().get(pk=instance.pk)
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()  # this thread's connection only

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10), "the other connection could not lock the row"
        yield
    finally:
        release.set()
        holder.join()
