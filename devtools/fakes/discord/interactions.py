"""The Discord stand-in's ids and test key pair, Discord-style snowflakes, and signed interactions as Discord posts them
(button clicks, user selects, modal submits): what tests send to the interactions endpoint.
"""

import hashlib
import itertools
import time
from datetime import UTC, datetime
from typing import Any

from nacl.encoding import HexEncoder
from nacl.signing import SigningKey

from devtools.fakes import (
    DISCORD_APPLICATION_ID,
    DISCORD_BOT_TOKEN,
    DISCORD_CATEGORY_IDS,
    DISCORD_GUILD_ID,
    DISCORD_STAFF_ROLE_ID,
    DISCORD_SUPPORT_CHANNEL_ID,
)

BOT_TOKEN = DISCORD_BOT_TOKEN
APPLICATION_ID = DISCORD_APPLICATION_ID
GUILD_ID = DISCORD_GUILD_ID
STAFF_ROLE_ID = DISCORD_STAFF_ROLE_ID
SUPPORT_CHANNEL_ID = DISCORD_SUPPORT_CHANNEL_ID
CATEGORY_IDS = list(DISCORD_CATEGORY_IDS)

# A fixed test key pair: the fake plays Discord, so it holds the private half; settings get the public half.
SIGNING_KEY = SigningKey(hashlib.sha256(b"modready discord test key").digest())
PUBLIC_KEY_HEX = SIGNING_KEY.verify_key.encode(HexEncoder).decode()

DISCORD_EPOCH_MS = 1420070400000
_sequence = itertools.count(1)


def snowflake(at: datetime | None = None) -> str:
    """A Discord id: milliseconds since 2015 in the high bits, so ids sort by time (as Discord's do)."""
    ms = int((at or datetime.now(UTC)).timestamp() * 1000)
    return str(((ms - DISCORD_EPOCH_MS) << 22) | (next(_sequence) & 0x3FFFFF))


def snowflake_time(snowflake_id: str) -> datetime:
    return datetime.fromtimestamp(((int(snowflake_id) >> 22) + DISCORD_EPOCH_MS) / 1000, tz=UTC)


# --- signed interactions --------------------------------------------------------------------------------------------


def sign_interaction(body: bytes, *, timestamp: str | None = None, key: SigningKey = SIGNING_KEY) -> dict[str, str]:
    """Discord's headers: Ed25519 over timestamp + raw body, hex encoded."""
    timestamp = timestamp or str(int(time.time()))
    signature = key.sign(timestamp.encode() + body).signature.hex()
    return {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": timestamp}


def user_object(user_id: str, username: str = "") -> dict:
    return {"id": user_id, "username": username or f"user{user_id[-4:]}", "global_name": None, "discriminator": "0"}


def interaction(
    interaction_type: int,
    *,
    user_id: str,
    data: dict | None = None,
    roles: list[str] | None = None,
    channel_id: str = SUPPORT_CHANNEL_ID,
    username: str = "",
    interaction_id: str = "",
    message: dict | None = None,
) -> dict:
    """An interaction as Discord sends it from a guild
    (https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object)."""
    body: dict[str, Any] = {
        "id": interaction_id or snowflake(),
        "application_id": APPLICATION_ID,
        "type": interaction_type,
        "token": f"itoken-{snowflake()}",
        "version": 1,
        "guild_id": GUILD_ID,
        "channel_id": channel_id,
        "member": {"user": user_object(user_id, username), "roles": roles or [], "permissions": "0"},
        "locale": "en-US",
    }
    if data is not None:
        body["data"] = data
    if message is not None:
        body["message"] = message
    return body


def button_click(custom_id: str, **kwargs) -> dict:
    return interaction(3, data={"custom_id": custom_id, "component_type": 2}, **kwargs)


def user_select(custom_id: str, picked: dict[str, list[str] | None], *, names: dict | None = None, **kwargs) -> dict:
    """A user select's submit as Discord sends it from a guild: `values` and `resolved` with each picked user and, for
    a member of the server, their partial member object with role ids (None: the user is not a member, so no member
    object). https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object-resolved-data-structure
    """
    names = names or {}
    users = {user_id: user_object(user_id, names.get(user_id, "")) for user_id in picked}
    members = {
        user_id: {"roles": list(roles), "joined_at": "2024-01-01T00:00:00+00:00", "nick": None, "permissions": "0"}
        for user_id, roles in picked.items()
        if roles is not None
    }
    data = {
        "custom_id": custom_id,
        "component_type": 5,
        "values": list(picked),
        "resolved": {"users": users, "members": members},
    }
    return interaction(3, data=data, **kwargs)


def modal_submit(custom_id: str, fields: dict[str, str | list[str]], **kwargs) -> dict:
    """A modal submit with Label components (type 18): a list value is a string select's `values`."""
    components = []
    for index, (field_id, value) in enumerate(fields.items(), start=1):
        if isinstance(value, list):
            child = {"type": 3, "id": index * 10 + 1, "custom_id": field_id, "values": value}
        else:
            child = {"type": 4, "id": index * 10 + 1, "custom_id": field_id, "value": value}
        components.append({"type": 18, "id": index * 10, "component": child})
    return interaction(5, data={"custom_id": custom_id, "components": components}, **kwargs)


def slash_command(name: str, options: dict[str, str], *, command_id: str = "", focused: str = "", **kwargs) -> dict:
    """A chat-input command (interaction type 2) as Discord sends it from a guild channel; with `focused`, the
    autocomplete request (type 4) Discord sends while the user types that option
    (https://discord.com/developers/docs/interactions/application-commands#autocomplete)."""
    data_options = []
    for option_name, value in options.items():
        option = {"type": 3, "name": option_name, "value": value}
        if option_name == focused:
            option["focused"] = True
        data_options.append(option)
    data = {"id": command_id or snowflake(), "name": name, "type": 1, "options": data_options}
    if "guild_id" not in kwargs:
        data["guild_id"] = GUILD_ID
    return interaction(4 if focused else 2, data=data, **kwargs)
