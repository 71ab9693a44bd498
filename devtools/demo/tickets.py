"""Discord support tickets in the demo history: about one customer in 25 opens a ticket from the support channel's
panel, talks with staff in the ticket's channel, and most tickets end closed with their transcript (and sometimes a
rating); one goes quiet and the inactivity job closes it; the newest are still open today.

Everything goes through support's real path, at the moment it happens (the player sets the clock per moment):

- what a customer or a staff member clicks in Discord reaches `support.interactions.handle`, the interactions view's
  work below the signature check (the panel's button, the modal, Claim, Close, a rating);
- the tasks those enqueue run the workflows that call Discord (create the channel and post the opening message,
  save the transcript and delete the channel, ask for a rating in a direct message);
- what people write in a ticket's channel is posted on the Discord stand-in as Discord would hold it, and the
  activity schedule (`support.tasks.tickets_activity_task`) reads it two minutes later; the auto-close schedule runs
  when the quiet ticket falls due.

Discord is a stand-in of the seed's own (devtools/fakes/discord/standin.py) on 127.0.0.1, answering with the
replayed clock so that ids and timestamps fall at the moment being played. In the local run
(config.settings.local without a Discord bot token) the channels of the tickets still open are then handed to the
stand-in bin/run serves, so that closing them from the admin works offline.

A customer's first ticket gives the email of their account in the form; a typed email links nothing, so the customer
then follows the link emailed to them and confirms their Discord account (support/identity.py), which attaches the
ticket to them. Nobody opens a ticket before signing up, and server questions come from customers who have a
subscription at the time.
"""

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.test.utils import override_settings
from django.utils import timezone

from devtools.demo.journeys import Journey
from devtools.demo.ticket_scripts import RATINGS, SCRIPTS, STAFF, Script, Staff
from devtools.fakes.discord import interactions as fake_discord
from devtools.fakes.discord.standin import DiscordStandIn, standin_reload
from support import hours, identity, interactions, tasks
from support.models import DiscordLinkRequest, Ticket, TicketStatus

logger = logging.getLogger(__name__)

CUSTOMERS_PER_TICKET = 25
MIN_TICKETS = 4  # even a small history shows an open, an auto-closed and closed tickets
STAFF_ROLES = [fake_discord.STAFF_ROLE_ID]


@dataclass
class Story:
    journey: Journey
    script: Script
    opened: datetime
    ending: str  # "closed", "auto" (the inactivity job closes it) or "open" (still open today)
    staff: Staff
    user_id: str
    username: str
    closer: str = "staff"
    rating: tuple[int, str] | None = None
    ticket_id: int | None = field(default=None, compare=False)


def plan(journeys: list[Journey], *, today: datetime, seed: int = 12) -> list[Story]:
    """Which customers open which ticket when, and how it ends. The same journeys and day give the same stories."""
    rng = random.Random(f"demo-tickets:{seed}:{len(journeys)}")
    count = max(MIN_TICKETS, round(len(journeys) / CUSTOMERS_PER_TICKET))
    still_open = max(1, count // 4)
    endings = ["open"] * still_open + ["auto"] + ["closed"] * (count - still_open - 1)
    scripts = list(SCRIPTS)
    rng.shuffle(scripts)
    candidates = list(journeys)
    rng.shuffle(candidates)
    stories: list[Story] = []
    for number, ending in enumerate(endings):
        # Each ticket takes the next script that some customer could plausibly have written at a fitting time (a
        # still-open one needs a customer active in the last day or so).
        found = None
        for script in scripts[number % len(scripts) :] + scripts[: number % len(scripts)]:
            found = next(
                ((j, at) for j in candidates if (at := _opening(j, script, ending=ending, today=today, rng=rng))),
                None,
            )
            if found:
                break
        if found:
            journey, opened = found
            candidates.remove(journey)
            rating = rng.choice(RATINGS) if ending == "closed" and rng.random() < 0.6 else None
            stories.append(
                Story(
                    journey=journey,
                    script=script,
                    opened=opened,
                    ending=ending,
                    staff=STAFF[number % len(STAFF)],
                    user_id=_discord_id(journey),
                    username=_username(journey),
                    closer="customer" if ending == "closed" and rng.random() < 0.25 else "staff",
                    rating=rating,
                )
            )
    return stories


def _opening(journey: Journey, script: Script, *, ending: str, today: datetime, rng: random.Random):
    """When this customer could plausibly open this ticket, or None. Server questions fall between the customer's
    first and last Stripe moment (a subscription exists); the others between signup and their first purchase."""
    moments = sorted(moment for moment, _ in journey.steps)
    signup, stripe = moments[0], moments[1:]
    if script.server:
        if not stripe:
            return None
        earliest, latest = stripe[0] + timedelta(days=1), stripe[-1] + timedelta(days=2)
    else:
        earliest, latest = signup + timedelta(hours=2), stripe[0] if stripe else today
    if ending == "open":
        earliest = max(earliest, today - timedelta(hours=30))
        latest = min(latest, today - timedelta(hours=1))
    else:
        # Closed ones end well before today; the quiet one needs three days for the warning and the grace period.
        latest = min(latest, today - timedelta(days=8 if ending == "auto" else 5))
    if latest <= earliest:
        return None
    moment = earliest + (latest - earliest) * rng.random()
    awake = moment.replace(hour=rng.randrange(7, 22), minute=rng.randrange(60))  # most write in the day (UTC)
    return awake if earliest <= awake <= latest else moment


def _discord_id(journey: Journey) -> str:
    """A Discord user id (snowflake) from the customer's signup time, as if their account was made then."""
    signup = min(moment for moment, _ in journey.steps)
    milliseconds = int(signup.timestamp() * 1000) - fake_discord.DISCORD_EPOCH_MS
    return str((milliseconds << 22) | (journey.index & 0x3FFFFF))


def _username(journey: Journey) -> str:
    first, _, last = journey.name.partition(" ")
    return f"{first.lower()}_{last[:3].lower()}{journey.index % 100}"


def _staffed(moment: datetime, *, settling_in: int) -> datetime:
    """`moment`, or `settling_in` minutes after support is back if it falls outside support hours."""
    back = hours.next_staffed_time(moment)
    return back + timedelta(minutes=settling_in) if back else moment


class _ReplayClock:
    """The seed's replayed time for the stand-in's thread: the clock of the moment being played (devtools.clock
    keeps it per thread), running on with real time as devtools.clock does."""

    def __init__(self):
        self.anchor: tuple[datetime, float] | None = None

    def follow(self) -> None:
        self.anchor = (timezone.now(), time.monotonic())

    def __call__(self) -> datetime:
        moment, started = self.anchor or (timezone.now(), time.monotonic())
        return moment + timedelta(seconds=time.monotonic() - started)


class TicketPlayer:
    """Schedules each story's moments on the demo player and plays them against a Discord stand-in."""

    def __init__(self, *, at: Callable[..., None], today: datetime):
        self.at = at
        self.today = today
        self.clock = _ReplayClock()
        self.discord = DiscordStandIn(port=0, autosave=False, clock=self.clock).start()
        self.settings = {
            "DISCORD_API_URL": self.discord.api_url,
            "DISCORD_BOT_TOKEN": fake_discord.BOT_TOKEN,
            "DISCORD_APPLICATION_ID": fake_discord.APPLICATION_ID,
            "DISCORD_GUILD_ID": fake_discord.GUILD_ID,
            "DISCORD_STAFF_ROLE_ID": fake_discord.STAFF_ROLE_ID,
            "DISCORD_SUPPORT_CHANNEL_ID": fake_discord.SUPPORT_CHANNEL_ID,
            "DISCORD_TICKET_CATEGORY_IDS": list(fake_discord.CATEGORY_IDS),
        }

    def schedule(self, stories: list[Story]) -> None:
        warn = timedelta(hours=settings.DISCORD_AUTOCLOSE_WARN_HOURS)
        grace = timedelta(hours=settings.DISCORD_AUTOCLOSE_GRACE_HOURS)
        for story in stories:
            self._moment(story.opened, self._open, story)
            # The customer follows the emailed link and confirms their Discord account (support/identity.py).
            self._moment(story.opened + timedelta(minutes=2), self._confirm_link, story)
            settling_in = 4 + story.journey.index % 50
            moment = _staffed(story.opened + timedelta(minutes=story.journey.index % 40 + 3), settling_in=settling_in)
            self._moment(moment, self._claim, story)
            lines = story.script.lines[:1] if story.ending == "auto" else story.script.lines
            for number, line in enumerate(lines):
                staff = number % 2 == 0
                wait = timedelta(minutes=7 + (story.journey.index * (number + 3)) % 80)
                moment = _staffed(moment + wait, settling_in=settling_in) if staff else moment + wait
                self._moment(moment, self._say, story, line, staff)
                self._moment(moment + timedelta(minutes=2), self._read_activity)
            if story.ending == "auto":
                # The every-15-minutes schedule: it warns the quiet ticket, then closes it after the grace period.
                warned = moment + warn + timedelta(minutes=15 - moment.minute % 15)
                self._moment(warned, self._autoclose)
                self._moment(warned + grace + timedelta(minutes=15), self._autoclose)
            elif story.ending == "closed":
                closed = moment + timedelta(minutes=4 if story.closer == "customer" else 35)
                closed = closed if story.closer == "customer" else _staffed(closed, settling_in=settling_in)
                self._moment(closed, self._close, story)
                if story.rating:
                    self._moment(closed + timedelta(minutes=11 + story.journey.index % 120), self._rate, story)
        self.at(self.today, self._hand_over, kind="support")

    def _moment(self, moment: datetime, work: Callable, *args) -> None:
        def run() -> None:
            self.clock.follow()
            with override_settings(**self.settings):
                work(*args)

        self.at(moment, run, kind="support")

    # what people do -----------------------------------------------------------------------------------------------
    def _open(self, story: Story) -> None:
        script = story.script
        person = {"user_id": story.user_id, "username": story.username}
        answer = self._click("ticket:open", **person)
        if answer.get("type") != 9:
            logger.warning("Demo ticket of %s not opened: %s", story.journey.email, answer)
            return
        fields = {
            "category": [script.category],
            "subject": script.subject,
            "description": script.description,
            "email": story.journey.email,
        }
        self._submit("ticket:open-modal", fields, **person)
        ticket = Ticket.objects.filter(discord_user_id=story.user_id).order_by("-pk").first()
        story.ticket_id = ticket.pk if ticket else None
        if ticket and ticket.discord_channel_id and script.attachment:
            self.discord.post_message(
                ticket.discord_channel_id,
                author_id=story.user_id,
                username=story.username,
                content="Here it is.",
                attachments=[(*script.attachment, "text/plain")],
                at=timezone.now(),
            )

    def _confirm_link(self, story: Story) -> None:
        link = (
            DiscordLinkRequest.objects.filter(discord_user_id=story.user_id, confirmed_at=None, declined_at=None)
            .order_by("-pk")
            .first()
        )
        if link is not None:
            identity.link_request_confirm(request_id=link.pk)

    def _claim(self, story: Story) -> None:
        self._staff_click(story, "claim")

    def _say(self, story: Story, text: str, staff: bool) -> None:
        ticket = self._ticket(story)
        if ticket is None or ticket.status != TicketStatus.OPEN:
            return
        author = (story.staff.user_id, story.staff.username) if staff else (story.user_id, story.username)
        self.discord.post_message(
            ticket.discord_channel_id, author_id=author[0], username=author[1], content=text, at=timezone.now()
        )

    def _read_activity(self) -> None:
        tasks.tickets_activity_task()

    def _autoclose(self) -> None:
        tasks.tickets_autoclose_task()

    def _close(self, story: Story) -> None:
        ticket = self._ticket(story)
        if ticket is None:
            return
        if story.closer == "customer":
            person, roles, reason = (story.user_id, story.username), [], "Solved, thanks"
        else:
            person, roles, reason = (story.staff.user_id, story.staff.username), STAFF_ROLES, story.script.close_reason
        who = {"user_id": person[0], "username": person[1], "roles": roles, "channel_id": ticket.discord_channel_id}
        modal = self._click(f"ticket:{ticket.pk}:close", **who)
        if modal.get("type") == 9:
            self._submit(modal["data"]["custom_id"], {"reason": reason}, **who)

    def _rate(self, story: Story) -> None:
        ticket = self._ticket(story)
        if ticket is None or story.rating is None:
            return
        stars, comment = story.rating
        person = {"user_id": story.user_id, "username": story.username}
        modal = self._click(f"ticket:{ticket.pk}:rate:{stars}", **person)
        if modal.get("type") == 9:
            self._submit(modal["data"]["custom_id"], {"comment": comment}, **person)

    def _staff_click(self, story: Story, action: str) -> None:
        ticket = self._ticket(story)
        if ticket is not None:
            staff = story.staff
            self._click(
                f"ticket:{ticket.pk}:{action}",
                user_id=staff.user_id,
                username=staff.username,
                roles=STAFF_ROLES,
                channel_id=ticket.discord_channel_id,
            )

    def _click(self, custom_id: str, **who) -> dict:
        return interactions.handle(fake_discord.button_click(custom_id, **self._ids(), **who))

    def _submit(self, custom_id: str, fields: dict, **who) -> dict:
        return interactions.handle(fake_discord.modal_submit(custom_id, fields, **self._ids(), **who))

    def _ids(self) -> dict:
        return {"interaction_id": fake_discord.snowflake(timezone.now())}

    @staticmethod
    def _ticket(story: Story) -> Ticket | None:
        return Ticket.objects.filter(pk=story.ticket_id).first() if story.ticket_id else None

    # the end of the history ---------------------------------------------------------------------------------------
    def _hand_over(self) -> None:
        """Stop the seed's stand-in; in the local run, hand what it holds (the open tickets' channels) to bin/run's."""
        self.discord.stop()
        if getattr(settings, "DISCORD_STANDIN", False):
            self.discord.state_path = settings.VAR_DIR / "discord-standin.json"
            self.discord.save()
            standin_reload(api_url=settings.DISCORD_API_URL)


def plan_tickets(player, journeys: list[Journey]) -> list[Story]:
    """The demo player's hook: plan the stories and schedule their moments on `player` (devtools/demo/player.py)."""
    stories = plan(journeys, today=player.today)
    TicketPlayer(at=player.at, today=player.today).schedule(stories)
    return stories
