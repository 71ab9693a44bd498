"""A fake Discord (REST API v10, its CDN, interaction webhooks) on 127.0.0.1, and a test key pair that signs
interactions the way Discord does. The tests' fake, and the Discord of the
local run and the demo seed (devtools/fakes/discord/standin.py, devtools/demo/tickets.py).

    with FakeDiscord() as discord:
        discord.add_category(CATEGORY_ID)                    # a tickets category (50 channels at most)
        settings.DISCORD_API_URL = discord.api_url
        discord.post_message(channel_id, author_id=USER_ID, content="hi", attachments=[("log.txt", b"...")])
        discord.limit_buckets(limit=5, per=1.0)              # X-RateLimit-* headers; 429 beyond 5 per second
        discord.fail_429(retry_after=0.2)                    # the next request answers 429 with a retry_after body
        discord.fail_next(500)                               # the harness's other switches work as usual
        discord.revoke_bot_token()                           # 401 on every bot call; interaction webhooks still work
        discord.message_content_intent = False               # others' messages come back without content
        discord.dms_closed.add(user_id)                      # a DM to this user answers 403, code 50007
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
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from devtools.fakes import DISCORD_API_PREFIX
from devtools.fakes.discord.channels import ChannelRoutes
from devtools.fakes.discord.interactions import (
    APPLICATION_ID,
    BOT_TOKEN,
    CATEGORY_IDS,
    GUILD_ID,
    snowflake,
    snowflake_time,
    user_object,
)
from devtools.fakes.discord.messages import MessageRoutes
from devtools.fakes.server import FakeRequest, FakeResponse, FakeServer

# --- the fake API ---------------------------------------------------------------------------------------------------


class FakeDiscord(ChannelRoutes, MessageRoutes, FakeServer):
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
        self.commands: list[dict] = []  # the application's guild commands (PUT .../commands replaces them)
        self._bucket_limit: tuple[int, float] | None = None
        self._buckets: dict[tuple[str, str], list[float]] = {}
        self.bucket_429s = 0
        self.invites: dict[str, dict] = {}  # code -> the invite (added for the crowdfunding invites)
        self.invite_limit = 1000  # a guild holds at most 1,000 invites (code 30016 beyond)
        self.deleted_invites: dict[str, dict] = {}  # code -> the invite as it was when deleted
        self.invite_delete_failures = 0  # the next n DELETE /invites/{code} answer 500 (switch: fail_invite_deletes)
        self.bot_token_revoked = False  # switch: revoke_bot_token()
        self.message_content_intent = True  # the privileged intent, as enabled in the developer portal
        # (author id, nonce) -> the message it created (enforce_nonce). Discord keeps them "for a few minutes" only:
        # nonces_expire() is that time passing.
        self.nonces: dict[tuple[str, str], dict] = {}
        self.dms_closed: set[str] = set()  # users who do not take DMs from server members (50007)
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

    def add_text_channel(self, channel_id: str, name: str) -> None:
        """A plain text channel of the guild (e.g. the support channel the panel goes in)."""
        with self.lock:
            self.channels[channel_id] = {"id": channel_id, "type": 0, "name": name, "guild_id": GUILD_ID}
            self.messages.setdefault(channel_id, [])

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

    def nonces_expire(self) -> None:
        """A few minutes pass: Discord no longer recognises a repeated nonce, so a repeat posts a second message."""
        with self.lock:
            self.nonces.clear()

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.nonces.clear()
            self._bucket_limit = None
            self._buckets.clear()
            self.bucket_429s = 0
            self.bot_token_revoked = False
            self.message_content_intent = True
            self.invite_delete_failures = 0
            self.deleted_invites.clear()
            self.dms_closed.clear()

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
