"""The one retry/backoff formula: exponential, capped. Every retried thing (stored webhooks, domain events, workflow
runs, outbound deliveries, email sends, HTTP calls) asks it for its next wait instead of writing its own.

    attempt 1 -> base, 2 -> 2*base, 3 -> 4*base, ... never more than cap.
"""

from datetime import datetime, timedelta

from django.utils import timezone


def backoff_seconds(attempt: int, *, base: float, cap: float) -> float:
    """The wait in seconds before retry number `attempt` (counted from 1; 0 or less is treated as 1)."""
    exponent = max(0, attempt - 1)
    if base <= 0:
        return 0.0
    # 2**exponent grows without bound; stop doubling once past the cap so a large attempt count cannot overflow.
    if exponent > 62 or base * 2**exponent >= cap:
        return float(cap)
    return float(base * 2**exponent)


def backoff_delay(attempt: int, *, base: timedelta, cap: timedelta) -> timedelta:
    """The same formula for timedeltas."""
    return timedelta(seconds=backoff_seconds(attempt, base=base.total_seconds(), cap=cap.total_seconds()))


def next_attempt_at(attempt: int, *, base: timedelta, cap: timedelta, now: datetime | None = None) -> datetime:
    """When retry number `attempt` is due."""
    return (now or timezone.now()) + backoff_delay(attempt, base=base, cap=cap)
