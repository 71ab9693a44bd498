"""Pacing calls to the email provider under its rate limit, shared by every sender of every drain in every process.

The transport says its current limit (`requests_per_second`, which the Resend transport follows from the
`ratelimit-limit` answer header); each call first takes the next free slot for that provider in one table row
(`ProviderCallSlot`), so all senders together stay under the limit instead of each keeping its own pace. A sender
first tries to take a slot at most one interval away; when another was first, it sleeps until a slot may be near and
then reserves: senders do not stack reservations far ahead, so a drain killed while its senders wait wastes few
slots. A 429 moves the shared slot past its Retry-After for everyone (`provider_slot_hold`), not only for the sender
that got it.
"""

import logging
import random
from collections.abc import Callable

from django.db import connection

from integrations.email_transport import EmailTransport

from .models import (
    ProviderCallSlot,
)

logger = logging.getLogger(__name__)


PACING_MARGIN = 1.05


def provider_slot_take(*, provider: str, interval: float) -> tuple[bool, float]:
    """Take the next call slot for `provider` if it is at most one `interval` away.

    Returns (taken, seconds): the wait until the slot taken, or until a slot may be taken when another sender was
    first. One statement, so two senders can never take the same slot; it runs in its own short transaction
    (autocommit), so the row is never held while a sender sleeps or calls out.
    """
    if connection.vendor != "postgresql":
        return True, 0.0  # the local single-process run (SQLite) has no second sender to share with
    table = ProviderCallSlot._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            # The upsert only moves the row when the slot is near; otherwise the row as it was says how long to wait.
            f"WITH taken AS (INSERT INTO {table} AS slot (provider, next_slot_at)"  # noqa: S608
            " VALUES (%(provider)s, clock_timestamp() + make_interval(secs => %(interval)s))"
            " ON CONFLICT (provider) DO UPDATE SET next_slot_at ="
            " GREATEST(slot.next_slot_at, clock_timestamp()) + make_interval(secs => %(interval)s)"
            " WHERE slot.next_slot_at <= clock_timestamp() + make_interval(secs => %(interval)s)"
            " RETURNING EXTRACT(EPOCH FROM (slot.next_slot_at - make_interval(secs => %(interval)s)"
            " - clock_timestamp())) AS wait)"
            " SELECT true, wait FROM taken UNION ALL"
            " SELECT false, EXTRACT(EPOCH FROM (next_slot_at - make_interval(secs => %(interval)s)"
            f" - clock_timestamp())) FROM {table} WHERE provider = %(provider)s AND NOT EXISTS (SELECT 1 FROM taken)",
            {"provider": provider, "interval": interval},
        )
        taken, wait = cursor.fetchone()
    return bool(taken), max(0.0, float(wait))


def provider_slot_reserve(*, provider: str, interval: float) -> float:
    """Reserve the next call slot however far away it is; returns the seconds to wait for it (0 when it is now)."""
    if connection.vendor != "postgresql":
        return 0.0
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


def provider_slot_hold(*, provider: str, seconds: float) -> None:
    """The provider refused a call for the rate (429 with Retry-After): no sender calls before `seconds` from now."""
    if connection.vendor != "postgresql" or seconds <= 0:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ProviderCallSlot._meta.db_table} AS slot (provider, next_slot_at)"  # noqa: S608
            " VALUES (%s, clock_timestamp() + make_interval(secs => %s))"
            " ON CONFLICT (provider) DO UPDATE SET next_slot_at ="
            " GREATEST(slot.next_slot_at, EXCLUDED.next_slot_at)",
            [provider, seconds],
        )


def call_slot_wait(*, transport: EmailTransport, sleep: Callable[[float], None]) -> None:
    """Wait for this sender's next call slot under the transport's current rate limit (none when it has none)."""
    if transport.requests_per_second <= 0:
        return
    interval = PACING_MARGIN / transport.requests_per_second
    taken, wait = provider_slot_take(provider=transport.provider, interval=interval)
    if not taken:
        # Another sender took the near slot (or a 429 holds everyone): wait until a slot may be near, spread a little
        # so the senders do not all ask at once, then reserve the next one wherever it is.
        sleep(wait + random.uniform(0, interval / 10))
        wait = provider_slot_reserve(provider=transport.provider, interval=interval)
    if wait > 0:
        sleep(wait)
