"""Support tests run against the fake Discord, with interactions signed by the test key pair."""

import json

import pytest
from django.core.cache import cache

from devtools.fakes.discord import interactions as fake_discord
from devtools.fakes.discord.interactions import sign_interaction
from devtools.fakes.discord.server import FakeDiscord

STAFF_ID = "1600000000000000001"
CUSTOMER_DISCORD_ID = "1700000000000000001"


def discord_settings_point_at(settings, server: FakeDiscord) -> None:
    """Our Discord settings aimed at the fake `server` (also used by the browser tests)."""
    settings.DISCORD_API_URL = server.api_url
    settings.DISCORD_APPLICATION_ID = fake_discord.APPLICATION_ID
    settings.DISCORD_PUBLIC_KEY = fake_discord.PUBLIC_KEY_HEX
    settings.DISCORD_BOT_TOKEN = fake_discord.BOT_TOKEN
    settings.DISCORD_GUILD_ID = fake_discord.GUILD_ID
    settings.DISCORD_STAFF_ROLE_ID = fake_discord.STAFF_ROLE_ID
    settings.DISCORD_SUPPORT_CHANNEL_ID = fake_discord.SUPPORT_CHANNEL_ID
    settings.DISCORD_TICKET_CATEGORY_IDS = list(fake_discord.CATEGORY_IDS)
    settings.DISCORD_SUPPORT_HOURS = ""  # always staffed unless a test says otherwise


@pytest.fixture
def discord(settings):
    with FakeDiscord() as server:
        server.add_category(fake_discord.CATEGORY_IDS[1], "tickets-2")
        discord_settings_point_at(settings, server)
        yield server


@pytest.fixture
def fresh_cache():
    """The ticket page caches what it read from Discord: no test sees another's."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def staff(client, support_user):
    """The test client, logged in as a Support user with a name (notes and audit entries carry it)."""
    support_user.first_name, support_user.last_name = "Sam", "Rivera"
    support_user.save()
    client.force_login(support_user)
    return client


def page_url(ticket) -> str:
    """The ticket page in the admin."""
    return f"/admin/support/ticket/{ticket.pk}/change/"


def act(client, ticket, action, data=None, *, run_on_commit):
    """Press one of the ticket page's buttons; what it sends leaves on commit."""
    with run_on_commit():
        return client.post(f"/admin/support/ticket/{ticket.pk}/act/{action}/", data or {})


@pytest.fixture
def send(client, django_capture_on_commit_callbacks):
    """POST a signed interaction; the tasks it enqueues run on commit (django-q2 runs them inline in tests)."""

    def post(payload: dict, *, headers: dict | None = None, raw: bytes | None = None):
        body = raw if raw is not None else json.dumps(payload).encode()
        signed = headers if headers is not None else sign_interaction(body)
        meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed.items()}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/api/discord/interactions", data=body, content_type="application/json", **meta)

    return post


def open_ticket(
    send,
    *,
    user_id=CUSTOMER_DISCORD_ID,
    category="technical",
    subject="Server crashes",
    description=("It crashes on start"),
    email="",
):
    """Click the panel button, then submit the modal: what a customer does."""
    click = send(fake_discord.button_click("ticket:open", user_id=user_id))
    assert click.json()["type"] == 9, click.json()
    fields = {"category": [category], "subject": subject, "description": description, "email": email}
    return send(fake_discord.modal_submit("ticket:open-modal", fields, user_id=user_id))
