from datetime import UTC, datetime

import pytest
from django.core.exceptions import ImproperlyConfigured

from support.hours import next_staffed_time
from support.triage import triage


@pytest.mark.parametrize(
    ("subject", "description", "expected"),
    [
        ("Refund", "I want my money back", "billing"),
        ("Question", "How do I install mods and change the config?", "setup"),
        ("Server", "It keeps crashing with an error and lag", "technical"),
        ("Hello", "I want to upgrade my plan", "purchase"),
        ("Hi", "Just saying hello", ""),
    ],
)
def test_keyword_triage(subject, description, expected):
    suggestion = triage(subject=subject, description=description)
    assert suggestion.category == expected
    assert suggestion.reason


def test_support_hours(settings):
    settings.DISCORD_SUPPORT_HOURS = "mon-fri 09:00-18:00"
    settings.DISCORD_SUPPORT_TIMEZONE = "UTC"
    assert next_staffed_time(datetime(2026, 11, 18, 10, 0, tzinfo=UTC)) is None  # a Wednesday morning
    back = next_staffed_time(datetime(2026, 11, 21, 10, 0, tzinfo=UTC))  # Saturday
    assert back == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    settings.DISCORD_SUPPORT_HOURS = ""
    assert next_staffed_time(datetime(2026, 11, 21, 10, 0, tzinfo=UTC)) is None
    settings.DISCORD_SUPPORT_HOURS = "weekdays 9-5"
    with pytest.raises(ImproperlyConfigured):
        next_staffed_time(datetime(2026, 11, 21, 10, 0, tzinfo=UTC))
