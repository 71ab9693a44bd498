"""SLA timers on a simulated clock: counted in support hours only, a ticket about to miss its target pings its staff
role once within one activity poll (2 minutes) and never outside support hours; the admin's filter and the metrics
page (support hours next to wall clock) on known data."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from devtools.clock import as_of
from devtools.fakes.discord import interactions as fake_discord
from support import tasks
from support.models import CategoryStaffRole, SlaAlert, SlaTarget, Ticket, TicketResponse
from support.sla_workflows import sla_check_run
from support.support_time import support_deadline, support_seconds_between
from tests.support.conftest import CUSTOMER_DISCORD_ID, STAFF_ID, open_ticket

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
POLL = timedelta(minutes=2)


@pytest.fixture
def hours(discord, settings):
    settings.DISCORD_SUPPORT_HOURS = "mon-fri 09:00-18:00"
    settings.DISCORD_SUPPORT_TIMEZONE = "Europe/Berlin"
    for priority, first in (("normal", 60), ("high", 20)):
        SlaTarget.objects.update_or_create(
            category="", priority=priority,
            defaults={"first_response_minutes": first, "next_response_minutes": 30, "warn_minutes": 15},
        )  # fmt: skip


def next_friday(at_hour: int, minute: int = 0) -> datetime:
    """A Friday at least a week ahead (the fake Discord's message ids must come after today's), Berlin time."""
    today = date.today() + timedelta(days=7)
    friday = today + timedelta(days=(4 - today.weekday()) % 7)
    return datetime(friday.year, friday.month, friday.day, at_hour, minute, tzinfo=BERLIN)


def pings(discord, ticket) -> list[dict]:
    return [m for m in discord.channel_messages(ticket.discord_channel_id) if "about to miss" in m["content"]]


def test_support_time_skips_nights_and_weekends(hours):
    friday = next_friday(17, 30)
    monday_0930 = friday + timedelta(days=2, hours=16)
    assert support_seconds_between(friday, monday_0930) == 60 * 60  # 30 min on Friday, 30 on Monday
    assert support_deadline(friday, 60 * 60) == monday_0930
    assert support_deadline(friday + timedelta(hours=3), 60) == monday_0930 - timedelta(minutes=29)


def test_a_breach_is_flagged_within_one_poll_never_outside_hours_and_pinged_once(hours, discord, send, admin_client):
    opened = next_friday(17, 30)
    with as_of(opened):
        open_ticket(send)
    ticket = Ticket.objects.get()
    # First-response target 60 support minutes: 30 on Friday, then Monday 09:00-09:30. Warning 15 minutes before.
    warn_at, due_at = opened + timedelta(days=2, hours=15, minutes=45), opened + timedelta(days=2, hours=16)
    moment, first_ping = opened, None
    while moment <= due_at + 2 * POLL:
        with as_of(moment):
            tasks.tickets_activity_task() if moment.minute % 30 == 0 else sla_check_run()
        if pings(discord, ticket) and first_ping is None:
            first_ping = moment
        moment += POLL
    assert first_ping is not None and warn_at <= first_ping < warn_at + POLL  # within one poll of the warning time
    assert first_ping.astimezone(BERLIN).weekday() == 0 and first_ping.astimezone(BERLIN).hour == 9
    sent = pings(discord, ticket)
    assert len(sent) == 1  # once, though every poll after it still saw the ticket waiting
    assert sent[0]["content"].startswith(f"<@&{fake_discord.STAFF_ROLE_ID}> ticket #{ticket.pk}")
    alert = SlaAlert.objects.get()
    assert (alert.kind, alert.response_number) == ("first", 1)
    assert abs(alert.due_at - due_at) < timedelta(seconds=5)  # the simulated clock runs on with real time
    with as_of(due_at + POLL):
        listed = admin_client.get("/admin/support/ticket/?sla=breached").content.decode()
        assert f"/admin/support/ticket/{ticket.pk}/change/" in listed
        assert (
            f"/admin/support/ticket/{ticket.pk}/change/"
            not in admin_client.get("/admin/support/ticket/?sla=breaching").content.decode()
        )
    with as_of(warn_at + POLL):
        breaching = admin_client.get("/admin/support/ticket/?sla=breaching").content.decode()
        assert f"/admin/support/ticket/{ticket.pk}/change/" in breaching


def test_nothing_is_pinged_off_hours_even_long_past_the_wall_clock_target(hours, discord, send):
    opened = next_friday(17, 50)
    with as_of(opened):
        open_ticket(send)
    ticket = Ticket.objects.get()
    moment = opened
    while moment < opened + timedelta(days=2, hours=15):  # the whole weekend, to Monday 08:50
        sla_check_run(now=moment)
        moment += timedelta(minutes=10)
    assert pings(discord, ticket) == [] and not SlaAlert.objects.exists()


def test_a_staff_answer_stops_the_clock_and_the_next_wait_has_its_own_ping(hours, discord, send):
    CategoryStaffRole.objects.create(category="technical", role_id="1300000000000000077")
    opened = next_friday(10)
    with as_of(opened):
        open_ticket(send)
    ticket = Ticket.objects.get()
    channel = ticket.discord_channel_id
    discord.post_message(
        channel, author_id=STAFF_ID, username="kim", content="On it", at=opened + timedelta(minutes=20)
    )
    with as_of(opened + timedelta(minutes=50)):
        tasks.tickets_activity_task()
    assert not pings(discord, ticket)  # answered in time: no ping
    asked = opened + timedelta(hours=1)
    discord.post_message(channel, author_id=CUSTOMER_DISCORD_ID, content="Still broken", at=asked)
    with as_of(asked + timedelta(minutes=16)):  # next-response target 30, warned 15 before
        tasks.tickets_activity_task()
        tasks.tickets_activity_task()
    sent = pings(discord, ticket)
    assert len(sent) == 1 and sent[0]["content"].startswith("<@&1300000000000000077>")  # the category's own role
    assert SlaAlert.objects.get().kind == "next"


def test_metrics_show_support_hours_next_to_wall_clock(hours, discord, send, admin_client):
    opened = next_friday(17, 30)
    with as_of(opened):
        open_ticket(send)
    ticket = Ticket.objects.get()
    channel = ticket.discord_channel_id
    monday = opened + timedelta(days=2, hours=15, minutes=30)  # Monday 09:00 Berlin
    discord.post_message(
        channel, author_id=STAFF_ID, username="kim", content="Hello", at=monday + timedelta(minutes=10)
    )
    discord.post_message(channel, author_id=CUSTOMER_DISCORD_ID, content="Thanks, but…", at=monday + timedelta(hours=1))
    discord.post_message(
        channel, author_id=STAFF_ID, username="kim", content="Try this", at=monday + timedelta(hours=1, minutes=20)
    )
    with as_of(monday + timedelta(hours=2)):
        tasks.tickets_activity_task()
    first, following = TicketResponse.objects.order_by("number")
    minutes = lambda r: (r.kind, round(r.support_seconds / 60), round(r.wall_seconds / 60))  # noqa: E731
    assert minutes(first) == ("first", 40, 3820)  # Friday 17:30-18:00 and Monday 09:00-09:10 in support hours
    assert minutes(following) == ("next", 20, 20)
    day = monday.date()
    page = admin_client.get(f"/admin/support/slatarget/metrics/?since={day - timedelta(days=7)}&until={day}")
    html = page.content.decode()
    assert page.status_code == 200
    technical = html[html.index('data-label="Technical"') :].split("</tr>")[0]
    assert '"first-support">40.0<' in technical and '"first-wall">3820.0<' in technical
    assert '"next-support">20.0<' in technical and '"next-wall">20.0<' in technical
    kim = html[html.index('data-label="kim"') :].split("</tr>")[0]
    assert '"first-support">40.0<' in kim and '"next-wall">20.0<' in kim
