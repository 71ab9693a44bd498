"""Pacing calls to the email provider under its rate limit, shared by every worker.

The transport says its current limit (`requests_per_second`, which a transport may read from its answers); each
call first reserves the next free slot for that provider in one table row, so several workers together stay under the
limit instead of each keeping its own pace.
"""

import logging
from collections.abc import Callable

from django.db import connection

from integrations.email_transport import EmailTransport

from .models import (
    ProviderCallSlot,
)

logger = logging.getLogger(__name__)


PACING_MARGIN = 1.05


def provider_slot_reserve(*, provider: str, interval: float) -> float:
    """Reserve the next call slot for `provider`; returns the seconds to wait for it (0 when it is now).

    One statement, so two workers can never take the same slot; it runs in its own short transaction (autocommit) so
    the row is never held while a worker sleeps or calls out.
    """
    if connection.vendor != "postgresql":
        return 0.0  # the local single-process run (SQLite) has no second worker to share with
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ProviderCallSlot._meta.db_table} AS slot (provider, next_slot_at)"  # noqa: S608
            " VALUES (%s, clock_timestamp() + make_interval(secs => %s))"
            " ON CONFLICT (provider) DO UPDATE SET next_slot_at ="
            " GREATEST(slot.next_slot_at, clock_timestamp()) + make_interval(secs => %s)"
            " RETURNING EXTRACT(EPOCH FROM (slot.next_slot_at - make_interval(secs => %s) - clock_timestamp()))",
            [provider, interval, interval, interval],
        )
        (wait,) = cursor.fetchone()
    return max(0.0, float(wait))


def call_slot_wait(*, transport: EmailTransport, sleep: Callable[[float], None]) -> None:
    """Wait for this worker's next call slot under the transport's current rate limit (none when it has none)."""
    if transport.requests_per_second > 0:
        interval = PACING_MARGIN / transport.requests_per_second
        wait = provider_slot_reserve(provider=transport.provider, interval=interval)
        if wait > 0:
            sleep(wait)
