"""A fake Discord (REST API v10, its CDN, interaction webhooks) on 127.0.0.1, and a test key pair that signs
interactions the way Discord does. The tests' fake (tests/fakes/discord.py re-exports it), and the Discord of the
local run and the demo seed (devtools/standins/discord_service.py, customers/demo/tickets.py).

    with FakeDiscord() as discord:
        discord.add_category(CATEGORY_ID)                    # a tickets category (50 channels at most)
        settings.DISCORD_API_URL = discord.api_url
        discord.post_message(channel_id, author_id=USER_ID, content="hi", attachments=[("log.txt", b"...")])
        discord.limit_buckets(limit=5, per=1.0)              # X-RateLimit-* headers; 429 beyond 5 per second
        discord.fail_429(retry_after=0.2)                    # the next request answers 429 with a retry_after body
        discord.fail_next(500)                               # the harness's other switches work as usual
        discord.revoke_bot_token()                           # 401 on every bot call; interaction webhooks still work
        discord.message_content_intent = False               # others' messages come back without content
        discord.fail_invite_deletes(times=2)                 # the next two DELETE /invites/{code} answer 500

What it speaks (https://discord.com/developers/docs/resources/): guild channels list/create (50 per category: 400
code 50035 naming `parent_id`; 500 per guild: 400 code 30013), channel get/delete (deleted channels take their
messages and attachments with them), permission overwrites, messages post/edit/list with `before`/`after`/`limit`
(newest first, as Discord answers), channel invites (create; list with their metadata; get and delete by code: a
deleted invite is gone and `invite_works`/`accept_invite` refuse it), attachments on a CDN path with signed, expiring
URLs, the interaction callback and the interaction webhook (`@original` edits, follow-ups), `GET /users/@me`.
Every API call needs `Authorization: Bot <token>` (else 401; `revoke_bot_token()` makes the one token the tests use
fail too) and a `DiscordBot (...)` User-Agent (else 403); webhook calls need neither, so they keep working with a
revoked token, as at Discord.

Without the privileged Message Content intent (`message_content_intent = False`), message reads return other users'
messages with empty `content`, `embeds`, `attachments` and `components`; the bot's own messages, messages that
mention the bot, and DMs keep theirs
(https://discord.com/developers/docs/events/gateway#message-content-intent).
"""

import hashlib
import itertools
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from nacl.encoding import HexEncoder
from nacl.signing import SigningKey

from . import (
    DISCORD_API_PREFIX,
    DISCORD_APPLICATION_ID,
    DISCORD_BOT_TOKEN,
    DISCORD_CATEGORY_IDS,
    DISCORD_GUILD_ID,
    DISCORD_STAFF_ROLE_ID,
    DISCORD_SUPPORT_CHANNEL_ID,
)
from .server import FakeRequest, FakeResponse, FakeServer, route

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


# --- the fake API ---------------------------------------------------------------------------------------------------


class FakeDiscord(FakeServer):
    name = "discord"
    prefix = DISCORD_API_PREFIX

    def __init__(self, *args, category_limit: int = 50, guild_limit: int = 500, attachment_ttl: float = 3600, **kw):
        super().__init__(*args, **kw)
        self.category_limit = category_limit
        self.guild_limit = guild_limit
        self.attachment_ttl = attachment_ttl
        self.channels: dict[str, dict] = {}
        self.messages: dict[str, list[dict]] = {}
        self.deleted_channels: dict[str, dict] = {}
        self.cdn: dict[str, dict] = {}  # path -> {data, content_type, channel_id, expires_at (wall clock)}
        self.callbacks: dict[str, dict] = {}  # interaction token -> the callback body
        self.originals: dict[str, dict] = {}  # interaction token -> the @original message as last edited
        self.followups: dict[str, list[dict]] = {}
        self._bucket_limit: tuple[int, float] | None = None
        self._buckets: dict[tuple[str, str], list[float]] = {}
        self.bucket_429s = 0
        self.invites: dict[str, dict] = {}  # code -> the invite (added for the crowdfunding invites)
        self.invite_limit = 1000  # a guild holds at most 1,000 invites (code 30016 beyond)
        self.deleted_invites: dict[str, dict] = {}  # code -> the invite as it was when deleted
        self.invite_delete_failures = 0  # the next n DELETE /invites/{code} answer 500 (switch: fail_invite_deletes)
        self.bot_token_revoked = False  # switch: revoke_bot_token()
        self.message_content_intent = True  # the privileged intent, as enabled in the developer portal
        self.add_category(CATEGORY_IDS[0], "tickets")

    @property
    def api_url(self) -> str:
        return self.url + self.prefix

    def now(self) -> datetime:
        """The time of new ids and timestamps; the demo seed's stand-in answers the moment it replays instead."""
        return datetime.now(UTC)

    # --- setup helpers ----------------------------------------------------------------------------------------------
    def add_category(self, category_id: str, name: str = "tickets-overflow") -> None:
        with self.lock:
            self.channels[category_id] = {"id": category_id, "type": 4, "name": name, "guild_id": GUILD_ID}

    def fill_category(self, category_id: str, count: int | None = None) -> None:
        """Put `count` (default: up to the limit) placeholder channels in a category."""
        with self.lock:
            present = sum(1 for c in self.channels.values() if c.get("parent_id") == category_id)
            for _ in range((self.category_limit if count is None else count) - present):
                channel_id = snowflake(self.now())
                self.channels[channel_id] = {
                    "id": channel_id,
                    "type": 0,
                    "name": "other",
                    "guild_id": GUILD_ID,
                    "parent_id": category_id,
                }

    def post_message(
        self,
        channel_id: str,
        *,
        author_id: str,
        content: str = "",
        username: str = "",
        bot: bool = False,
        attachments: list[tuple] | None = None,
        at: datetime | None = None,
    ) -> dict:
        """A message as someone in the channel would write it. Attachments: (filename, bytes[, content_type])."""
        with self.lock:
            message_id = snowflake(at)
            author = user_object(author_id, username)
            if bot:
                author["bot"] = True
            message = self._message(channel_id, message_id, author, {"content": content})
            for attachment in attachments or []:
                filename, data, content_type = (*attachment, "application/octet-stream")[:3]
                message["attachments"].append(self._store_attachment(channel_id, filename, data, content_type))
            self.messages.setdefault(channel_id, []).append(message)
            self.messages[channel_id].sort(key=lambda m: int(m["id"]))
            return message

    def expire_attachments(self) -> None:
        with self.lock:
            for entry in self.cdn.values():
                entry["expires_at"] = 0

    def limit_buckets(self, *, limit: int | None, per: float = 1.0) -> None:
        """Every route's bucket allows `limit` calls per `per` seconds (X-RateLimit-* headers; 429 beyond)."""
        with self.lock:
            self._bucket_limit = (limit, per) if limit else None
            self._buckets.clear()

    def fail_429(self, *, retry_after: float, times: int = 1, is_global: bool = False) -> None:
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
        headers = {"X-RateLimit-Scope": "global" if is_global else "user"}
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        self.fail_next(429, times=times, body=body, headers=headers, retry_after=retry_after)

    def revoke_bot_token(self, revoked: bool = True) -> None:
        """The bot token was reset in the developer portal: every bot call answers 401, interaction webhooks (which
        carry their own token) keep working."""
        with self.lock:
            self.bot_token_revoked = revoked

    def fail_invite_deletes(self, *, times: int = 1) -> None:
        with self.lock:
            self.invite_delete_failures = times

    def invite_works(self, code: str) -> bool:
        """Whether https://discord.gg/<code> would let someone in now: not when the invite is gone (deleted,
        unknown), expired or used up (Discord's "Invite invalid" screen)."""
        with self.lock:
            invite = self.invites.get(code)
            if invite is None:
                return False
            if invite["expires_at"] and datetime.fromisoformat(invite["expires_at"]) <= datetime.now(UTC):
                return False
            return not (invite["max_uses"] and invite["uses"] >= invite["max_uses"])

    def accept_invite(self, code: str) -> bool:
        """Someone follows the link: False (refused) as `invite_works`, else one use is counted."""
        with self.lock:
            if not self.invite_works(code):
                return False
            self.invites[code]["uses"] += 1
            return True

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self._bucket_limit = None
            self._buckets.clear()
            self.bucket_429s = 0
            self.bot_token_revoked = False
            self.message_content_intent = True
            self.invite_delete_failures = 0
            self.deleted_invites.clear()

    # --- views for assertions ---------------------------------------------------------------------------------------
    def ticket_channels(self) -> list[dict]:
        with self.lock:
            return [c for c in self.channels.values() if c["type"] == 0 and c.get("name", "").startswith("ticket-")]

    def channel_messages(self, channel_id: str) -> list[dict]:
        with self.lock:
            return list(self.messages.get(channel_id, []))

    # --- shapes -----------------------------------------------------------------------------------------------------
    def error_body(self, status: int) -> Any:
        return {"message": f"Injected failure {status}", "code": 0}

    def rate_limited_response(self, retry_after: float) -> FakeResponse:
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
        return FakeResponse(429, body, headers={"Retry-After": str(retry_after), "X-RateLimit-Scope": "user"})

    @staticmethod
    def _error(status: int, code: int, message: str, errors: dict | None = None) -> FakeResponse:
        body: dict[str, Any] = {"code": code, "message": message}
        if errors:
            body["errors"] = errors
        return FakeResponse(status, body)

    def _message(self, channel_id: str, message_id: str, author: dict, payload: dict) -> dict:
        return {
            "id": message_id,
            "channel_id": channel_id,
            "type": 0,
            "author": author,
            "content": payload.get("content", ""),
            "embeds": payload.get("embeds", []),
            "components": payload.get("components", []),
            "attachments": [],
            "timestamp": snowflake_time(message_id).isoformat(),
            "edited_timestamp": None,
        }

    @staticmethod
    def _without_content(message: dict) -> dict:
        """A message as a bot without the Message Content intent reads it: others' messages lose their content."""
        author_id = (message.get("author") or {}).get("id")
        if author_id == APPLICATION_ID or f"<@{APPLICATION_ID}>" in (message.get("content") or ""):
            return message
        return {**message, "content": "", "embeds": [], "attachments": [], "components": []}

    def _store_attachment(self, channel_id: str, filename: str, data: bytes, content_type: str) -> dict:
        attachment_id = snowflake(self.now())
        path = f"/attachments/{channel_id}/{attachment_id}/{quote(filename)}"
        expires_at = time.time() + self.attachment_ttl
        self.cdn[path] = {
            "data": data,
            "content_type": content_type,
            "channel_id": channel_id,
            "expires_at": expires_at,
        }
        signature = hashlib.sha256(path.encode()).hexdigest()[:16]
        url = f"{self.url}{path}?ex={int(expires_at):x}&is={int(time.time()):x}&hm={signature}"
        return {
            "id": attachment_id,
            "filename": filename,
            "size": len(data),
            "content_type": content_type,
            "url": url,
            "proxy_url": url,
        }

    # --- auth and rate limits, around every route -------------------------------------------------------------------
    def _handle(self, request: FakeRequest) -> FakeResponse | None:
        is_api = request.path.startswith(self.prefix) and not request.path.startswith(f"{self.prefix}/webhooks/")
        is_api = is_api and "/callback" not in request.path
        authorized = request.header("authorization") == f"Bot {BOT_TOKEN}" and not self.bot_token_revoked
        if is_api and not authorized:
            with self.lock:
                self.requests.append(request)
            return FakeResponse(401, {"message": "401: Unauthorized", "code": 0})
        if is_api and not request.header("user-agent").startswith("DiscordBot ("):
            with self.lock:
                self.requests.append(request)
            return FakeResponse(403, {"message": "Missing or invalid User-Agent", "code": 0})
        bucket_headers, limited_for = self._take_bucket(request)
        if limited_for is not None:
            with self.lock:
                self.requests.append(request)
                self.bucket_429s += 1
            body = {"message": "You are being rate limited.", "retry_after": round(limited_for, 3), "global": False}
            headers = {**bucket_headers, "Retry-After": f"{limited_for:.3f}", "X-RateLimit-Scope": "user"}
            return FakeResponse(429, body, headers=headers)
        response = super()._handle(request)
        if response is not None and response.status != 429:
            response.headers.update(bucket_headers)
        return response

    def _take_bucket(self, request: FakeRequest) -> tuple[dict[str, str], float | None]:
        parts = request.path.split("/")
        major = parts[4] if len(parts) > 4 and parts[3] in ("channels", "guilds", "webhooks") else ""
        shape = "/".join(p if not p.isdigit() or i == 4 else "{id}" for i, p in enumerate(parts))
        key = (f"{request.method} {shape}", major)
        bucket_id = hashlib.sha256(key[0].encode()).hexdigest()[:12]
        with self.lock:
            if self._bucket_limit is None:
                return {
                    "X-RateLimit-Bucket": bucket_id,
                    "X-RateLimit-Limit": "1000",
                    "X-RateLimit-Remaining": "999",
                    "X-RateLimit-Reset-After": "1.000",
                }, None
            limit, per = self._bucket_limit
            now = time.monotonic()
            window = self._buckets.setdefault(key, [])
            window[:] = [t for t in window if now - t < per]
            reset_after = per - (now - window[0]) if window else per
            if len(window) >= limit:
                headers = {
                    "X-RateLimit-Bucket": bucket_id,
                    "X-RateLimit-Limit": str(limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                }
                return headers, reset_after
            window.append(now)
            headers = {
                "X-RateLimit-Bucket": bucket_id,
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(limit - len(window)),
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            }
            return headers, None

    # --- guild channels ---------------------------------------------------------------------------------------------
    @route("GET", r"/api/v10/guilds/(?P<guild_id>\d+)/channels")
    def guild_channels(self, request: FakeRequest):
        with self.lock:
            return [c for c in self.channels.values() if c["guild_id"] == request.params["guild_id"]]

    @route("POST", r"/api/v10/guilds/(?P<guild_id>\d+)/channels")
    def channel_create(self, request: FakeRequest):
        body = request.json() or {}
        parent_id = str(body.get("parent_id") or "")
        with self.lock:
            if not body.get("name"):
                return self._error(
                    400,
                    50035,
                    "Invalid Form Body",
                    {"name": {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}},
                )
            guild_channels = [c for c in self.channels.values() if c["guild_id"] == request.params["guild_id"]]
            if len(guild_channels) >= self.guild_limit:
                return self._error(400, 30013, "Maximum number of guild channels reached (500)")
            if parent_id:
                parent = self.channels.get(parent_id)
                if not parent or parent["type"] != 4:
                    return self._error(
                        400,
                        50035,
                        "Invalid Form Body",
                        {
                            "parent_id": {
                                "_errors": [{"code": "CHANNEL_PARENT_INVALID", "message": "Category does not exist"}]
                            }
                        },
                    )
                if sum(1 for c in guild_channels if c.get("parent_id") == parent_id) >= self.category_limit:
                    errors = {
                        "parent_id": {
                            "_errors": [
                                {
                                    "code": "CHANNEL_PARENT_MAX_CHANNELS",
                                    "message": "Maximum number of channels in category reached (50)",
                                }
                            ]
                        }
                    }
                    return self._error(400, 50035, "Invalid Form Body", errors)
            channel_id = snowflake(self.now())
            channel = {
                "id": channel_id,
                "type": body.get("type", 0),
                "name": body["name"],
                "guild_id": request.params["guild_id"],
                "parent_id": parent_id or None,
                "topic": body.get("topic"),
                "permission_overwrites": [
                    {**o, "allow": str(o.get("allow", "0")), "deny": str(o.get("deny", "0"))}
                    for o in body.get("permission_overwrites") or []
                ],
            }
            self.channels[channel_id] = channel
            self.messages[channel_id] = []
            return FakeResponse(201, channel)

    @route("GET", r"/api/v10/channels/(?P<channel_id>\d+)")
    def channel_get(self, request: FakeRequest):
        with self.lock:
            channel = self.channels.get(request.params["channel_id"])
            return channel if channel else self._error(404, 10003, "Unknown Channel")

    @route("DELETE", r"/api/v10/channels/(?P<channel_id>\d+)")
    def channel_delete(self, request: FakeRequest):
        channel_id = request.params["channel_id"]
        with self.lock:
            channel = self.channels.pop(channel_id, None)
            if channel is None:
                return self._error(404, 10003, "Unknown Channel")
            self.deleted_channels[channel_id] = {**channel, "messages": self.messages.pop(channel_id, [])}
            for path in [p for p, e in self.cdn.items() if e["channel_id"] == channel_id]:
                del self.cdn[path]  # attachments disappear with their channel
            return channel

    @route("PUT", r"/api/v10/channels/(?P<channel_id>\d+)/permissions/(?P<overwrite_id>\d+)")
    def overwrite_put(self, request: FakeRequest):
        body = request.json() or {}
        with self.lock:
            channel = self.channels.get(request.params["channel_id"])
            if channel is None:
                return self._error(404, 10003, "Unknown Channel")
            overwrites = [o for o in channel["permission_overwrites"] if o["id"] != request.params["overwrite_id"]]
            overwrites.append(
                {
                    "id": request.params["overwrite_id"],
                    "type": body.get("type", 0),
                    "allow": str(body.get("allow", "0")),
                    "deny": str(body.get("deny", "0")),
                }
            )
            channel["permission_overwrites"] = overwrites
            return FakeResponse(204)

    @route("DELETE", r"/api/v10/channels/(?P<channel_id>\d+)/permissions/(?P<overwrite_id>\d+)")
    def overwrite_delete(self, request: FakeRequest):
        with self.lock:
            channel = self.channels.get(request.params["channel_id"])
            if channel is None:
                return self._error(404, 10003, "Unknown Channel")
            channel["permission_overwrites"] = [
                o for o in channel["permission_overwrites"] if o["id"] != request.params["overwrite_id"]
            ]
            return FakeResponse(204)

    # --- invites (https://discord.com/developers/docs/resources/channel#create-channel-invite) ---------------------
    @route("POST", r"/api/v10/channels/(?P<channel_id>\d+)/invites")
    def invite_create(self, request: FakeRequest):
        payload = request.json() or {}
        max_age, max_uses = payload.get("max_age", 86400), payload.get("max_uses", 0)
        if not (0 <= max_age <= 604800 and 0 <= max_uses <= 100):
            return self._error(400, 50035, "Invalid Form Body", {"max_age": {"_errors": [{"message": "out of range"}]}})
        with self.lock:
            if request.params["channel_id"] in self.deleted_channels:
                return self._error(404, 10003, "Unknown Channel")
            if len(self.invites) >= self.invite_limit:
                return self._error(400, 30016, "Maximum number of invites reached (1000)")
            code = hashlib.sha256(f"invite-{next(_sequence)}-{time.time_ns()}".encode()).hexdigest()[:10]
            now = self.now()
            invite = {
                "code": code,
                "type": 0,
                "channel": {"id": request.params["channel_id"], "type": 0},
                "guild": {"id": GUILD_ID},
                "inviter": {**user_object(APPLICATION_ID, "ModReady"), "bot": True},
                "max_age": max_age,
                "max_uses": max_uses,
                "unique": bool(payload.get("unique")),
                "role_ids": payload.get("role_ids") or [],
                "uses": 0,
                "temporary": False,
                "created_at": now.isoformat(),
                "expires_at": datetime.fromtimestamp(now.timestamp() + max_age, UTC).isoformat() if max_age else None,
            }
            self.invites[code] = invite
            return invite

    @route("GET", r"/api/v10/channels/(?P<channel_id>\d+)/invites")
    def channel_invites(self, request: FakeRequest):
        """Get Channel Invites: the channel's invites with their metadata (uses, max_uses, max_age, created_at)."""
        with self.lock:
            if request.params["channel_id"] in self.deleted_channels:
                return self._error(404, 10003, "Unknown Channel")
            return [dict(i) for i in self.invites.values() if i["channel"]["id"] == request.params["channel_id"]]

    def add_invite(self, channel_id: str, *, max_uses: int = 1, role_ids: list[str] | None = None, **extra) -> str:
        """An invite someone else made in the channel (staff in Discord's UI, another bot)."""
        with self.lock:
            code = hashlib.sha256(f"other-{next(_sequence)}-{time.time_ns()}".encode()).hexdigest()[:10]
            self.invites[code] = {
                "code": code,
                "type": 0,
                "channel": {"id": channel_id, "type": 0},
                "guild": {"id": GUILD_ID},
                "inviter": user_object("1800000000000000001", "staff"),
                "max_age": 604800,
                "max_uses": max_uses,
                "unique": True,
                "role_ids": role_ids or [],
                "uses": 0,
                "temporary": False,
                "created_at": self.now().isoformat(),
                "expires_at": None,
                **extra,
            }
            return code

    @route("GET", r"/api/v10/invites/(?P<code>[A-Za-z0-9-]+)")
    def invite_get(self, request: FakeRequest):
        """https://discord.com/developers/docs/resources/invite#get-invite: a deleted invite is Unknown Invite."""
        with self.lock:
            invite = self.invites.get(request.params["code"])
            return dict(invite) if invite else self._error(404, 10006, "Unknown Invite")

    @route("DELETE", r"/api/v10/invites/(?P<code>[A-Za-z0-9-]+)")
    def invite_delete(self, request: FakeRequest):
        """https://discord.com/developers/docs/resources/invite#delete-invite: answers the deleted invite; the link
        stops working at once. A second delete is Unknown Invite (404, 10006)."""
        with self.lock:
            if self.invite_delete_failures > 0:
                self.invite_delete_failures -= 1
                return FakeResponse(500, {"message": "500: Internal Server Error", "code": 0})
            invite = self.invites.pop(request.params["code"], None)
            if invite is None:
                return self._error(404, 10006, "Unknown Invite")
            self.deleted_invites[invite["code"]] = invite
            return dict(invite)

    # --- the bot user -----------------------------------------------------------------------------------------------
    @route("GET", r"/api/v10/users/@me")
    def current_user(self, request: FakeRequest):
        """https://discord.com/developers/docs/resources/user#get-current-user: the cheapest token check."""
        return {**user_object(APPLICATION_ID, "ModReady"), "bot": True}

    # --- messages ---------------------------------------------------------------------------------------------------
    @route("POST", r"/api/v10/channels/(?P<channel_id>\d+)/messages")
    def message_create(self, request: FakeRequest):
        channel_id = request.params["channel_id"]
        payload = request.json() or {}
        with self.lock:
            if channel_id not in self.channels:
                return self._error(404, 10003, "Unknown Channel")
            if not any(payload.get(k) for k in ("content", "embeds", "components")):
                return self._error(400, 50006, "Cannot send an empty message")
            bot = {**user_object(APPLICATION_ID, "ModReady"), "bot": True}
            message = self._message(channel_id, snowflake(self.now()), bot, payload)
            self.messages.setdefault(channel_id, []).append(message)
            return message

    @route("PATCH", r"/api/v10/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)")
    def message_edit(self, request: FakeRequest):
        payload = request.json() or {}
        with self.lock:
            for message in self.messages.get(request.params["channel_id"], []):
                if message["id"] == request.params["message_id"]:
                    message.update({k: v for k, v in payload.items() if k in ("content", "embeds", "components")})
                    message["edited_timestamp"] = self.now().isoformat()
                    return message
            return self._error(404, 10008, "Unknown Message")

    @route("GET", r"/api/v10/channels/(?P<channel_id>\d+)/messages")
    def messages_list(self, request: FakeRequest):
        channel_id = request.params["channel_id"]
        limit = max(1, min(100, int((request.query.get("limit") or ["50"])[0])))
        before = (request.query.get("before") or [""])[0]
        after = (request.query.get("after") or [""])[0]
        with self.lock:
            if channel_id not in self.channels:
                return self._error(404, 10003, "Unknown Channel")
            messages = self.messages.get(channel_id, [])
            if after:
                page = [m for m in messages if int(m["id"]) > int(after)][:limit]
            else:
                older = [m for m in messages if not before or int(m["id"]) < int(before)]
                page = older[-limit:]
            page = json.loads(json.dumps(list(reversed(page))))  # newest first, as Discord
            if not self.message_content_intent and self.channels[channel_id]["type"] != 1:
                page = [self._without_content(m) for m in page]
            return FakeResponse(200, page)

    @route("POST", r"/api/v10/users/@me/channels")
    def dm_channel_create(self, request: FakeRequest):
        recipient_id = str((request.json() or {}).get("recipient_id") or "")
        with self.lock:
            for channel in self.channels.values():
                if channel["type"] == 1 and channel["recipients"][0]["id"] == recipient_id:
                    return channel
            channel_id = snowflake(self.now())
            channel = {"id": channel_id, "type": 1, "guild_id": None, "recipients": [user_object(recipient_id)]}
            self.channels[channel_id] = channel
            self.messages[channel_id] = []
            return channel

    def dm_messages(self, user_id: str) -> list[dict]:
        with self.lock:
            for channel in self.channels.values():
                if channel["type"] == 1 and channel["recipients"][0]["id"] == user_id:
                    return list(self.messages.get(channel["id"], []))
            return []

    # --- CDN --------------------------------------------------------------------------------------------------------
    @route("GET", r"/attachments/.+")
    def cdn_get(self, request: FakeRequest):
        with self.lock:
            entry = self.cdn.get(request.path)
            if entry is None or entry["expires_at"] < time.time():
                return FakeResponse(404, body=b"This content is no longer available.")
            return FakeResponse(200, body=entry["data"], headers={"Content-Type": entry["content_type"]})

    # --- interactions -----------------------------------------------------------------------------------------------
    @route("POST", r"/api/v10/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback")
    def interaction_callback(self, request: FakeRequest):
        with self.lock:
            if request.params["token"] in self.callbacks:
                return self._error(400, 40060, "Interaction has already been acknowledged.")
            self.callbacks[request.params["token"]] = request.json()
            return FakeResponse(204)

    @route("PATCH", r"/api/v10/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)/messages/@original")
    def original_edit(self, request: FakeRequest):
        with self.lock:
            if request.params["app_id"] != APPLICATION_ID:
                return self._error(404, 10015, "Unknown Webhook")
            message = self.originals.setdefault(request.params["token"], {"id": snowflake(self.now())})
            message.update(request.json() or {})
            return message

    @route("GET", r"/api/v10/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)/messages/@original")
    def original_get(self, request: FakeRequest):
        with self.lock:
            message = self.originals.get(request.params["token"])
            return message if message else self._error(404, 10008, "Unknown Message")

    @route("POST", r"/api/v10/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)")
    def followup_create(self, request: FakeRequest):
        with self.lock:
            if request.params["app_id"] != APPLICATION_ID:
                return self._error(404, 10015, "Unknown Webhook")
            message = {"id": snowflake(self.now()), **(request.json() or {})}
            self.followups.setdefault(request.params["token"], []).append(message)
            return message
