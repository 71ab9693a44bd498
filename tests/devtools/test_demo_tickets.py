"""Which demo customers open which Discord ticket, when, and how it ends (devtools/demo/tickets.py). What the seed
makes of the plan is checked in tests/devtools/test_seed_demo.py."""

from datetime import UTC, datetime, timedelta

from devtools.demo.journeys import cast
from devtools.demo.tickets import plan

TODAY = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


def told(stories) -> list[tuple]:
    return [(s.journey.email, s.script.subject, s.opened, s.ending, s.closer, s.rating, s.user_id) for s in stories]


def test_the_default_history_has_a_dozen_tickets_mostly_closed_some_open_one_gone_quiet():
    journeys = cast(count=300, today=TODAY)
    stories = plan(journeys, today=TODAY)
    endings = [s.ending for s in stories]
    assert len(stories) >= 8
    assert endings.count("open") >= 2 and endings.count("auto") == 1
    assert endings.count("closed") > len(stories) / 2
    assert any(s.rating for s in stories) and any(s.closer == "customer" for s in stories)
    assert len({s.journey.email for s in stories}) == len(stories)  # one ticket each
    assert len({s.script.category for s in stories}) >= 4  # lag, mods, backups, billing, ...


def test_nobody_writes_before_signing_up_and_server_questions_come_with_a_subscription():
    journeys = cast(count=300, today=TODAY)
    for story in plan(journeys, today=TODAY):
        moments = sorted(moment for moment, _ in story.journey.steps)
        assert story.opened > moments[0], story
        if story.script.server:
            assert len(moments) > 1 and story.opened > moments[1], story
        if story.ending == "open":
            assert TODAY - timedelta(hours=30) <= story.opened < TODAY
        else:
            assert story.opened < TODAY - timedelta(days=5)


def test_the_same_customers_and_day_tell_the_same_story():
    first = plan(cast(count=300, today=TODAY), today=TODAY)
    again = plan(cast(count=300, today=TODAY), today=TODAY)
    assert told(first) == told(again)
    small = plan(cast(count=30, today=TODAY), today=TODAY)
    assert {s.ending for s in small} == {"open", "auto", "closed"}
