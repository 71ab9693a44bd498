from datetime import UTC, datetime, timedelta

from core.retry import backoff_delay, backoff_seconds, next_attempt_at


def test_the_wait_doubles_from_the_base_and_stops_at_the_cap():
    waits = [backoff_seconds(attempt, base=30, cap=300) for attempt in range(1, 7)]
    assert waits == [30, 60, 120, 240, 300, 300]


def test_a_first_or_unnumbered_attempt_waits_the_base():
    assert backoff_seconds(0, base=2, cap=60) == 2
    assert backoff_seconds(1, base=2, cap=60) == 2


def test_a_huge_attempt_count_waits_the_cap_without_overflowing():
    assert backoff_seconds(10_000, base=0.25, cap=5) == 5


def test_timedeltas_and_due_times_follow_the_same_formula():
    assert backoff_delay(3, base=timedelta(minutes=1), cap=timedelta(hours=1)) == timedelta(minutes=4)
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    due = next_attempt_at(2, base=timedelta(minutes=5), cap=timedelta(hours=6), now=now)
    assert due == datetime(2026, 12, 7, 12, 10, tzinfo=UTC)
