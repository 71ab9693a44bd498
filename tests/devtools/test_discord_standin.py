"""The local run's Discord stand-in: the tests' fake Discord, keeping its channels in var/ between runs."""

from datetime import UTC, datetime

import requests

from devtools.fakes.discord.interactions import APPLICATION_ID, BOT_TOKEN, CATEGORY_IDS, GUILD_ID, snowflake_time
from devtools.fakes.discord.standin import DiscordStandIn, standin_reload
from integrations.discord import DiscordClient


def client(standin: DiscordStandIn) -> DiscordClient:
    return DiscordClient(bot_token=BOT_TOKEN, application_id=APPLICATION_ID, api_url=standin.api_url)


def test_channels_messages_and_attachments_survive_a_restart_on_another_port(tmp_path):
    state = tmp_path / "discord-standin.json"
    with DiscordStandIn(port=0, state_path=state) as first:
        channel = client(first).channel_create(guild_id=GUILD_ID, name="ticket-7", parent_id=CATEGORY_IDS[1])
        first.post_message(channel["id"], author_id="1700000000000000001", content="log attached",
                           attachments=[("latest.log", b"[Server thread/ERROR]: tick took 4000ms")])  # fmt: skip
        client(first).message_create(channel_id=channel["id"], payload={"content": "Thanks, looking"})

    with DiscordStandIn(port=0, state_path=state) as second:
        discord = client(second)
        history = discord.messages_history(channel_id=channel["id"])
        assert [m["content"] for m in history] == ["log attached", "Thanks, looking"]
        # The attachment's URL now names the running stand-in, and the file is still there.
        url = history[0]["attachments"][0]["url"]
        assert url.startswith(second.url)
        assert discord.attachment_download(url=url, max_bytes=1000) == b"[Server thread/ERROR]: tick took 4000ms"
        discord.channel_delete(channel_id=channel["id"])

    with DiscordStandIn(port=0, state_path=state) as third:
        names = {c["name"] for c in client(third).guild_channels(guild_id=GUILD_ID)}
        assert names == {"tickets", "tickets-2"}  # the deletion was kept; both ticket categories are there


def test_a_running_stand_in_reloads_what_the_seed_saved(tmp_path):
    state = tmp_path / "discord-standin.json"
    with DiscordStandIn(port=0, state_path=state) as running:
        seed = DiscordStandIn(port=0, autosave=False)
        seed.channels["1600000000000000042"] = {"id": "1600000000000000042", "type": 0, "name": "ticket-42",
                                                "guild_id": GUILD_ID, "parent_id": CATEGORY_IDS[0]}  # fmt: skip
        seed.state_path = state
        seed.save()
        refused = requests.post(f"{running.url}/_standin/reload", timeout=5)
        assert refused.status_code == 401
        assert "1600000000000000042" not in running.channels

        assert standin_reload(api_url=running.api_url)
        assert client(running).channel_get(channel_id="1600000000000000042")["name"] == "ticket-42"
    assert not standin_reload(api_url=running.api_url, timeout=1)  # nobody answers: the file waits for the next start


def test_ids_and_timestamps_follow_the_clock_it_is_given():
    moment = datetime(2026, 8, 30, 14, 5, tzinfo=UTC)
    with DiscordStandIn(port=0, autosave=False, clock=lambda: moment) as standin:
        discord = client(standin)
        channel = discord.channel_create(guild_id=GUILD_ID, name="ticket-1", parent_id=CATEGORY_IDS[0])
        message = discord.message_create(channel_id=channel["id"], payload={"content": "hello"})
    assert snowflake_time(channel["id"]) == moment
    assert datetime.fromisoformat(message["timestamp"]) == moment
