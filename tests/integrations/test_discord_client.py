"""The Discord REST client against the fake Discord on 127.0.0.1."""

import logging

import pytest

from devtools.fakes.discord.interactions import APPLICATION_ID, BOT_TOKEN, CATEGORY_IDS, GUILD_ID
from devtools.fakes.discord.server import FakeDiscord
from integrations.discord import DiscordClient, DiscordError, RateLimiter


@pytest.fixture
def fake():
    with FakeDiscord() as server:
        yield server


def make_client(fake, **kwargs) -> DiscordClient:
    slept: list[float] = []
    limiter = RateLimiter(sleep=lambda s: slept.append(s) or __import__("time").sleep(min(s, 0.05)))
    client = DiscordClient(
        bot_token=BOT_TOKEN, application_id=APPLICATION_ID, api_url=fake.api_url, limiter=limiter, **kwargs
    )
    client.slept = slept
    return client


def test_sends_bot_auth_and_discordbot_user_agent(fake):
    client = make_client(fake)
    channel = client.channel_create(guild_id=GUILD_ID, name="ticket-1", parent_id=CATEGORY_IDS[0])
    request = fake.requests_to("POST", r"/api/v10/guilds/\d+/channels")[0]
    assert request.header("authorization") == f"Bot {BOT_TOKEN}"
    assert request.header("user-agent").startswith("DiscordBot (")
    assert fake.channels[channel["id"]]["parent_id"] == CATEGORY_IDS[0]


def test_full_category_is_a_typed_error_naming_parent_id(fake):
    fake.fill_category(CATEGORY_IDS[0])
    client = make_client(fake)
    with pytest.raises(DiscordError) as caught:
        client.channel_create(guild_id=GUILD_ID, name="ticket-2", parent_id=CATEGORY_IDS[0])
    assert (caught.value.status, caught.value.code) == (400, 50035)
    assert "parent_id" in caught.value.message


def test_429_waits_retry_after_and_retries(fake):
    client = make_client(fake)
    fake.fail_429(retry_after=0.25)
    client.guild_channels(guild_id=GUILD_ID)
    assert client.slept == [0.25]
    assert len(fake.requests_to("GET", r"/api/v10/guilds/\d+/channels")) == 2


def test_empty_bucket_is_waited_for_before_the_call(fake):
    fake.limit_buckets(limit=2, per=0.3)
    client = make_client(fake)
    channel = client.channel_create(guild_id=GUILD_ID, name="ticket-3", parent_id=CATEGORY_IDS[0])
    for _ in range(5):
        client.messages_list(channel_id=channel["id"])
    assert fake.bucket_429s == 0  # the client read Remaining: 0 and waited for Reset-After instead of hitting a 429
    assert client.slept


def test_401_is_not_retried_and_stops_the_client(fake, caplog):
    client = DiscordClient(bot_token="wrong-token", application_id=APPLICATION_ID, api_url=fake.api_url)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DiscordError) as caught:
        client.guild_channels(guild_id=GUILD_ID)
    assert caught.value.is_auth_failure and not caught.value.is_retryable
    with pytest.raises(DiscordError):
        client.guild_channels(guild_id=GUILD_ID)
    assert len(fake.requests) == 1  # the second call never left the process
    assert (
        "wrong-token" not in caplog.text
        and "wrong-token" not in repr(client)
        and "wrong-token" not in str(caught.value)
    )


def test_5xx_on_post_is_raised_not_retried_but_get_is_retried(fake):
    client = make_client(fake)
    fake.fail_next(502)
    with pytest.raises(DiscordError) as caught:
        client.channel_create(guild_id=GUILD_ID, name="ticket-4", parent_id=CATEGORY_IDS[0])
    assert caught.value.status == 502 and caught.value.is_retryable
    assert fake.ticket_channels() == []
    fake.fail_next(500)
    assert client.guild_channels(guild_id=GUILD_ID)


def test_history_pages_backwards_and_after_reads_only_new(fake):
    client = make_client(fake)
    channel = client.channel_create(guild_id=GUILD_ID, name="ticket-5", parent_id=CATEGORY_IDS[0])
    posted = [fake.post_message(channel["id"], author_id="42", content=f"m{i}") for i in range(250)]
    history = client.messages_history(channel_id=channel["id"])
    assert [m["content"] for m in history] == [f"m{i}" for i in range(250)]
    assert len(fake.requests_to("GET", r"/api/v10/channels/\d+/messages")) == 3
    newer = list(client.messages_after(channel_id=channel["id"], after=posted[199]["id"]))
    assert [m["content"] for m in newer] == [f"m{i}" for i in range(200, 250)]


def test_a_history_page_above_discords_limit_is_refused_as_discord_does(fake):
    # Discord answers 400 (50035) to limit=101 instead of clamping it: a client asking for more would fail in
    # production while passing against a lenient fake.
    client = make_client(fake)
    channel = client.channel_create(guild_id=GUILD_ID, name="ticket-6", parent_id=CATEGORY_IDS[0])
    fake.post_message(channel["id"], author_id="42", content="hello")
    with pytest.raises(DiscordError) as refused:
        client.messages_list(channel_id=channel["id"], limit=101)
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert [m["content"] for m in client.messages_list(channel_id=channel["id"], limit=100)] == ["hello"]


def test_attachment_download_is_capped_and_sends_no_token(fake):
    client = make_client(fake)
    channel = client.channel_create(guild_id=GUILD_ID, name="ticket-6", parent_id=CATEGORY_IDS[0])
    message = fake.post_message(
        channel["id"], author_id="42", attachments=[("a.txt", b"x" * 100), ("b.bin", b"y" * 5000)]
    )
    small, big = message["attachments"]
    assert client.attachment_download(url=small["url"], max_bytes=1000) == b"x" * 100
    assert client.attachment_download(url=big["url"], max_bytes=1000) is None
    assert all(not r.header("authorization") for r in fake.requests_to("GET", r"/attachments/.+"))


def test_interaction_original_edit_and_followup(fake):
    client = make_client(fake)
    client.interaction_original_edit(interaction_token="tok-1", payload={"content": "done"})
    client.interaction_followup(interaction_token="tok-1", payload={"content": "more"})
    assert fake.originals["tok-1"]["content"] == "done"
    assert fake.followups["tok-1"][0]["content"] == "more"


def test_a_global_429_pauses_every_route(fake):
    client = make_client(fake)
    fake.fail_429(retry_after=0.3, is_global=True)
    client.guild_channels(guild_id=GUILD_ID)
    assert client.limiter.global_reset_at > 0
    assert client.slept[0] == 0.3


def test_dropped_connection_on_a_read_is_retried_and_errors_hold_no_webhook_token(fake):
    client = make_client(fake)
    fake.drop_next()
    assert client.guild_channels(guild_id=GUILD_ID)  # answered on the second try
    fake.drop_next()
    with pytest.raises(DiscordError) as caught:
        client.interaction_followup(interaction_token="secret-interaction-token", payload={"content": "x"})
    assert caught.value.status == 0 and "secret-interaction-token" not in str(caught.value) + caught.value.body
