"""The limits around opening tickets under load: the per-user cap in a burst of submits, and channel placement when the
first ticket categories are full. Through signed interactions against the fake Discord."""

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from devtools.fakes.discord import interactions as fake_discord
from devtools.fakes.discord.interactions import sign_interaction
from devtools.fakes.discord.server import FakeDiscord
from devtools.fakes.server import route
from support.models import ACTIVE_STATUSES, Ticket, TicketStatus
from tests.support.conftest import open_ticket

CATEGORIES = ["purchase", "setup", "technical", "billing", "other"]


def _submit_at_once(user_id: str, categories: list[str]) -> list:
    """One modal submit per category, all at the same moment, each from its own thread and database connection (as
    Discord's deliveries reach several web workers)."""
    barrier = threading.Barrier(len(categories))
    answers = []

    def submit(category):
        fields = {"category": [category], "subject": f"About {category}", "description": "help", "email": ""}
        body = json.dumps(fake_discord.modal_submit("ticket:open-modal", fields, user_id=user_id)).encode()
        meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in sign_interaction(body).items()}
        barrier.wait()
        try:
            answers.append(
                Client().post("/api/discord/interactions", data=body, content_type="application/json", **meta)
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(category,)) for category in categories]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_submits_never_exceeds_the_open_ticket_cap(discord, settings):
    settings.DISCORD_MAX_OPEN_TICKETS_PER_USER = 3
    for attempt in range(3):
        user_id = f"19000000000000000{attempt}"
        answers = _submit_at_once(user_id, CATEGORIES)
        opened = Ticket.objects.filter(discord_user_id=user_id, status__in=ACTIVE_STATUSES).count()
        assert opened == 3, f"burst {attempt}: {opened} open tickets"
        kinds = sorted(a.json()["type"] for a in answers)
        assert kinds == [4, 4, 5, 5, 5]  # three deferred (opening), two told why not
        refusals = [a.json()["data"]["content"] for a in answers if a.json()["type"] == 4]
        assert all("3 open tickets" in text for text in refusals), refusals


@pytest.mark.django_db
def test_a_burst_of_openings_starts_in_the_first_category_with_room(discord, send):
    """The first category is full: every new channel goes straight into the second, and Discord refuses none."""
    discord.fill_category(fake_discord.CATEGORY_IDS[0])
    for n in range(8):
        open_ticket(send, user_id=f"18000000000000000{n}")
    tickets = list(Ticket.objects.all())
    assert len(tickets) == 8 and {t.status for t in tickets} == {TicketStatus.OPEN}
    assert {discord.channels[t.discord_channel_id]["parent_id"] for t in tickets} == {fake_discord.CATEGORY_IDS[1]}
    creates = discord.requests_to("POST", r"/api/v10/guilds/\d+/channels")
    assert [r.json()["parent_id"] for r in creates] == [fake_discord.CATEGORY_IDS[1]] * 8


class CategoryFillsAfterListing(FakeDiscord):
    """Another opening takes the last places of the first category between our listing and our create."""

    @route("GET", r"/api/v10/guilds/(?P<guild_id>\d+)/channels")
    def guild_channels(self, request):
        listing = super().guild_channels(request)
        self.fill_category(fake_discord.CATEGORY_IDS[0])
        return listing


@pytest.mark.django_db
def test_a_category_that_fills_after_the_listing_still_overflows(discord, send, settings):
    with CategoryFillsAfterListing() as racing:
        racing.add_category(fake_discord.CATEGORY_IDS[1], "tickets-2")
        racing.fill_category(fake_discord.CATEGORY_IDS[0], count=49)
        settings.DISCORD_API_URL = racing.api_url
        open_ticket(send)
        ticket = Ticket.objects.get()
        assert ticket.status == TicketStatus.OPEN
        assert racing.channels[ticket.discord_channel_id]["parent_id"] == fake_discord.CATEGORY_IDS[1]
        creates = racing.requests_to("POST", r"/api/v10/guilds/\d+/channels")
        # The first category looked like it had room; Discord's 50035 answer moved the channel on.
        assert [r.json()["parent_id"] for r in creates] == list(fake_discord.CATEGORY_IDS[:2])
