"""Delays in words: what marketing types into a step's delay, and how every delay is shown back."""

from datetime import timedelta

import pytest
from django import forms

from automations.forms import DelayField, describe_timing, format_delay, parse_delay

# No database is used; the marker lets the package's autouse fixture (the default flows) find the test database.
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("typed", "delay"),
    [
        ("3 days 4 hours", timedelta(days=3, hours=4)),
        ("90 minutes", timedelta(minutes=90)),
        ("1 day", timedelta(days=1)),
        ("2h", timedelta(hours=2)),
        ("1d 4h", timedelta(days=1, hours=4)),
        ("1d4h", timedelta(days=1, hours=4)),
        ("  3 Days, 4 hrs and 5 min ", timedelta(days=3, hours=4, minutes=5)),
        ("2 weeks", timedelta(days=14)),
        ("0", timedelta(0)),
        ("now", timedelta(0)),
        ("1 00:00:00", timedelta(days=1)),  # what the field showed before: a bookmarked habit still works
        ("3:00:00", timedelta(hours=3)),
    ],
)
def test_delays_are_read_as_written(typed, delay):
    assert parse_delay(typed) == delay


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("3 dayz", "'dayz' is not a unit"),
        ("soon", "Could not read 'soon' as a delay"),
        ("3", "Say the unit of '3'"),
        ("1 day 2 days", "Days are given twice"),
        ("-1 day", "A delay cannot be negative."),
        ("-1 00:00:00", "A delay cannot be negative."),
        ("400 days", "A delay is at most 365 days."),
        ("99999999999 days", "A delay is at most 365 days."),
        ("1.5 hours", "Could not read '1.5 hours'"),
        ("3 days later", "Could not read '3 days later'"),
        ("", "Write a delay like"),
    ],
)
def test_nonsense_gets_a_message_that_says_how_to_write_it(typed, message):
    with pytest.raises(forms.ValidationError) as error:
        DelayField().clean(typed)
    assert message in " ".join(error.value.messages)


@pytest.mark.parametrize(
    ("delay", "words"),
    [
        (timedelta(days=3, hours=4), "3 days 4 hours"),
        (timedelta(minutes=90), "1 hour 30 minutes"),
        (timedelta(days=1), "1 day"),
        (timedelta(0), "0 minutes"),
        (timedelta(seconds=45), "45 seconds"),
    ],
)
def test_delays_are_shown_in_words_and_read_back_the_same(delay, words):
    assert format_delay(delay) == words
    assert parse_delay(words) == delay


@pytest.mark.parametrize(
    ("delay", "anchor", "words"),
    [
        (timedelta(0), "enrollment", "at enrollment"),
        (timedelta(days=3), "enrollment", "3 days after enrollment"),
        (timedelta(hours=2), "previous_step", "2 hours after the previous step"),
        (timedelta(days=1), "before_next_payment_attempt", "1 day before Stripe's next payment attempt"),
        (timedelta(hours=6), "next_payment_attempt", "6 hours after Stripe's next payment attempt"),
        (timedelta(0), "retries_exhausted", "when Stripe stops retrying"),
        (timedelta(days=2), "retries_exhausted", "2 days after Stripe stops retrying"),
    ],
)
def test_a_step_says_what_its_delay_counts_from(delay, anchor, words):
    assert describe_timing(delay=delay, anchor=anchor) == words
