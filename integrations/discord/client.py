"""Discord's REST API (v10) for a bot that works over HTTP interactions (no gateway).

https://discord.com/developers/docs/reference: `Authorization: Bot <token>`, `User-Agent: DiscordBot (url, version)`.
Rate limits (https://discord.com/developers/docs/topics/rate-limits) are read from the answers, never hard-coded:
`X-RateLimit-Bucket`, `-Remaining`, `-Reset-After` per bucket; a 429 carries `retry_after` (seconds, float) and
`global`. Before a request whose bucket is known to be empty, the client waits for its reset; a 429 waits
`retry_after` and retries the same request (a 429 means Discord did not act on it). The global limit (about 50
requests a second per bot) is kept by pacing every bot-authenticated call; interaction webhooks do not count.

What is never retried here: 401 and 403 (Discord bans an IP after 10,000 invalid requests in 10 minutes; a bad token
latches the client's bot calls so the rest of the run stops, while interaction webhooks, which need no bot token, keep
working; a client built from settings also raises the staff alert, integrations/alerts.py), other 4xx, and a
POST/PATCH that got a 5xx or no answer (it may have been applied: the caller checks before acting again). GET, PUT
and DELETE are idempotent and are retried on a 5xx or a dropped connection a few times.

To add an endpoint, write a small method that calls `self.request(method, path, json=...)`; buckets, retries and
errors come with it. The bot token and interaction tokens never appear in an error or a log line.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
from django.conf import settings

from core.configuration import provider_require
from core.retry import backoff_seconds
from integrations.http import ProviderError, session_build

from .rate_limit import RateLimiter, route_and_major, shared_limiter

logger = logging.getLogger(__name__)

API_VERSION = "v10"
DEFAULT_API_URL = f"https://discord.com/api/{API_VERSION}"
PAGE_SIZE = 100  # the most messages one history call returns
# A transport failure or 5xx of a call safe to repeat waits 0.5 s, 1 s, 2 s, ... at most 5 s (core/retry.py).
RETRY_BASE_SECONDS = 0.5
RETRY_CAP_SECONDS = 5.0

# Permission bits (https://discord.com/developers/docs/topics/permissions#permissions-bitwise-permission-flags).
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
TICKET_MEMBER_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY

# Error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json-json-error-codes).
UNKNOWN_CHANNEL = 10003
UNKNOWN_INVITE = 10006
UNKNOWN_MESSAGE = 10008
UNKNOWN_INTERACTION = 10062
MAX_GUILD_CHANNELS = 30013
MAX_GUILD_INVITES = 30016
ALREADY_ACKNOWLEDGED = 40060
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
INVALID_FORM_BODY = 50035


@dataclass
class DiscordError(ProviderError):
    """Discord refused a call or could not be reached (status 0). `code` and `message` are Discord's JSON error."""

    code: int = 0
    message: str = ""

    provider = "discord"

    def __str__(self) -> str:
        detail = f" code {self.code}" if self.code else ""
        return f"discord error {self.status}{detail}: {self.message or self.body[:300]}"

    @property
    def is_auth_failure(self) -> bool:
        """401/403: the token or the bot's permissions are wrong; retrying only counts towards an IP ban."""
        return self.status in (401, 403)

    @property
    def is_retryable(self) -> bool:
        return not self.is_auth_failure and super().is_retryable

    @classmethod
    def from_response(cls, response: requests.Response) -> "DiscordError":
        code, message = 0, ""
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            code = data.get("code") or 0
            message = str(data.get("message") or "")
            if data.get("errors"):
                message = f"{message} {_flatten_errors(data['errors'])}".strip()
        return cls(
            status=response.status_code,
            body=response.text[:2000],
            retry_after=_retry_after(response, data),
            code=code if isinstance(code, int) else 0,
            message=message[:500],
        )


def _flatten_errors(errors: Any, prefix: str = "") -> str:
    """Discord's nested form errors as `field: message` pairs, e.g. `parent_id: Maximum number of channels ...`."""
    if not isinstance(errors, dict):
        return ""
    parts = []
    for key, value in errors.items():
        if key == "_errors" and isinstance(value, list):
            parts.extend(f"{prefix or 'body'}: {e.get('message', '')}" for e in value if isinstance(e, dict))
        elif isinstance(value, dict):
            parts.append(_flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    return "; ".join(p for p in parts if p)


def _retry_after(response: requests.Response, data: Any) -> float | None:
    if isinstance(data, dict) and isinstance(data.get("retry_after"), int | float):
        return float(data["retry_after"])
    for header in ("Retry-After", "X-RateLimit-Reset-After"):
        try:
            return float(response.headers[header])
        except (KeyError, ValueError):
            continue
    return None


@dataclass
class Attachment:
    """A downloaded attachment: `data` is None when it was larger than the cap (then only its metadata is kept)."""

    filename: str
    content_type: str
    size: int
    data: bytes | None


@dataclass
class DiscordClient:
    bot_token: str
    application_id: str
    api_url: str = DEFAULT_API_URL
    timeout: tuple[float, float] = (3.05, 15)
    max_attempts: int = 4  # per call, for 429s and idempotent retries
    max_wait: float = 60.0  # a rate-limit wait longer than this is raised (the task retries later) instead of slept
    limiter: RateLimiter = field(default_factory=lambda: shared_limiter)
    user_agent: str = "DiscordBot (https://modready.example, 1.0)"
    report_token_health: bool = False  # a 401 raises the staff alert, the first success clears it (integrations.alerts)

    def __post_init__(self) -> None:
        self.api_url = self.api_url.rstrip("/")
        self.session = session_build(
            timeout=self.timeout, headers={"User-Agent": self.user_agent, "Accept": "application/json"}
        )
        # Attachments come from Discord's CDN, which needs no credentials: a separate session never sends the token.
        self.cdn_session = session_build(timeout=self.timeout, headers={"User-Agent": self.user_agent})
        self._auth_failed: DiscordError | None = None
        self._token_confirmed = False  # a bot call succeeded with this client (reported once)

    def _token_report(self, *, accepted: bool, error: DiscordError | None) -> None:
        """Tell staff (integrations.alerts) that the bot token was refused, or works again. Never fails the call."""
        if not self.report_token_health:
            return
        from integrations import alerts

        try:
            if accepted:
                alerts.discord_token_accepted()
            else:
                alerts.discord_token_rejected(error=error)
        except Exception:  # the alert is a courtesy; the call's own outcome matters more
            logger.exception("Could not record the Discord token's state")

    def __repr__(self) -> str:  # dataclass's repr would print the token
        return f"DiscordClient(application_id={self.application_id!r}, api_url={self.api_url!r})"

    @classmethod
    def from_settings(cls) -> "DiscordClient":
        provider_require("Discord API")  # integrations/providers.py
        return cls(
            bot_token=settings.DISCORD_BOT_TOKEN,
            application_id=settings.DISCORD_APPLICATION_ID,
            api_url=settings.DISCORD_API_URL,
            timeout=(3.05, settings.DISCORD_TIMEOUT),
            user_agent=f"DiscordBot ({settings.SITE_URL}, 1.0)",
            report_token_health=True,
        )

    # --- the one request path ----------------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, json: Any = None, params: dict | None = None) -> Any:
        """One API call; returns the decoded JSON (None for 204). Raises DiscordError."""
        method = method.upper()
        is_webhook = path.startswith("/webhooks/")
        # A rejected bot token stops the bot's calls only: interaction webhooks carry their own token and keep working,
        # so a customer can still be told that their ticket could not be opened.
        if self._auth_failed is not None and not is_webhook:
            raise self._auth_failed
        route, major = route_and_major(method, path)
        headers = {} if is_webhook else {"Authorization": f"Bot {self.bot_token}"}
        idempotent = method in ("GET", "PUT", "DELETE")
        for attempt in range(1, self.max_attempts + 1):
            self.limiter.wait_turn(route, major, counts_globally=not is_webhook)
            try:
                response = self.session.request(method, self.api_url + path, json=json, params=params, headers=headers)
            except requests.RequestException as exc:
                # Not from_transport: a requests error message carries the URL, and webhook URLs hold a token.
                error = DiscordError(status=0, body=f"{route}: no answer ({type(exc).__name__})")
                error.message = error.body
                if idempotent and attempt < self.max_attempts:
                    self.limiter.sleep(backoff_seconds(attempt, base=RETRY_BASE_SECONDS, cap=RETRY_CAP_SECONDS))
                    continue
                raise error from exc
            self.limiter.update(route, major, response.headers)
            if response.status_code < 300:
                if not is_webhook and not self._token_confirmed:
                    self._token_confirmed = True
                    self._token_report(accepted=True, error=None)
                return response.json() if response.content else None
            error = DiscordError.from_response(response)
            if response.status_code == 401 and not is_webhook:
                self._auth_failed = error  # a bad token: stop this run here instead of repeating invalid requests
                self._token_report(accepted=False, error=error)
            if response.status_code == 429:
                wait = error.retry_after if error.retry_after is not None else 1.0
                if (
                    response.headers.get("X-RateLimit-Global", "").lower() == "true"
                    or '"global": true' in response.text
                ):
                    self.limiter.hit_global(wait)
                logger.warning(
                    "Discord 429 on %s (scope %s), waiting %.2fs",
                    route,
                    response.headers.get("X-RateLimit-Scope", "?"),
                    wait,
                )
                if attempt < self.max_attempts and wait <= self.max_wait:
                    self.limiter.sleep(wait)
                    continue
            elif response.status_code >= 500 and idempotent and attempt < self.max_attempts:
                self.limiter.sleep(backoff_seconds(attempt, base=RETRY_BASE_SECONDS, cap=RETRY_CAP_SECONDS))
                continue
            logger.warning("Discord call %s failed: %s %s", route, error.status, error.code)
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    def current_user(self) -> dict:
        """The bot's own user (https://discord.com/developers/docs/resources/user#get-current-user): the cheapest call
        that proves the token works."""
        return self.request("GET", "/users/@me")

    # --- guild channels ----------------------------------------------------------------------------------------------
    def channel_create(
        self,
        *,
        guild_id: str,
        name: str,
        parent_id: str = "",
        permission_overwrites: list[dict] | None = None,
        topic: str = "",
    ) -> dict:
        """A text channel (https://discord.com/developers/docs/resources/guild#create-guild-channel)."""
        body: dict[str, Any] = {"name": name, "type": 0, "permission_overwrites": permission_overwrites or []}
        if parent_id:
            body["parent_id"] = parent_id
        if topic:
            body["topic"] = topic[:1024]
        return self.request("POST", f"/guilds/{guild_id}/channels", json=body)

    def guild_channels(self, *, guild_id: str) -> list[dict]:
        return self.request("GET", f"/guilds/{guild_id}/channels")

    def channel_get(self, *, channel_id: str) -> dict:
        return self.request("GET", f"/channels/{channel_id}")

    def channel_delete(self, *, channel_id: str) -> None:
        """Irreversible; a channel already gone (10003) counts as deleted."""
        try:
            self.request("DELETE", f"/channels/{channel_id}")
        except DiscordError as exc:
            if exc.status == 404 and exc.code == UNKNOWN_CHANNEL:
                return
            raise

    def permission_overwrite_put(
        self, *, channel_id: str, overwrite_id: str, overwrite_type: int, allow: int, deny: int = 0
    ) -> None:
        """https://discord.com/developers/docs/resources/channel#edit-channel-permissions (type 0 role, 1 member)."""
        body = {"type": overwrite_type, "allow": str(allow), "deny": str(deny)}
        self.request("PUT", f"/channels/{channel_id}/permissions/{overwrite_id}", json=body)

    def permission_overwrite_delete(self, *, channel_id: str, overwrite_id: str) -> None:
        self.request("DELETE", f"/channels/{channel_id}/permissions/{overwrite_id}")

    # --- messages ----------------------------------------------------------------------------------------------------
    def message_create(self, *, channel_id: str, payload: dict) -> dict:
        """https://discord.com/developers/docs/resources/message#create-message (content, embeds, components)."""
        return self.request("POST", f"/channels/{channel_id}/messages", json=payload)

    def message_edit(self, *, channel_id: str, message_id: str, payload: dict) -> dict:
        return self.request("PATCH", f"/channels/{channel_id}/messages/{message_id}", json=payload)

    def messages_list(
        self, *, channel_id: str, before: str = "", after: str = "", limit: int = PAGE_SIZE
    ) -> list[dict]:
        """One page of history, oldest first (Discord answers newest first; we sort by snowflake id)."""
        params: dict[str, Any] = {"limit": limit}
        if before:
            params["before"] = before
        if after:
            params["after"] = after
        page = self.request("GET", f"/channels/{channel_id}/messages", params=params) or []
        return sorted(page, key=lambda m: int(m["id"]))

    def messages_after(self, *, channel_id: str, after: str = "", max_pages: int = 50) -> Iterator[dict]:
        """Messages newer than `after` (all when empty), oldest first, page by page."""
        cursor = after or "0"
        for _ in range(max_pages):
            page = self.messages_list(channel_id=channel_id, after=cursor)
            yield from page
            if len(page) < PAGE_SIZE:
                return
            cursor = page[-1]["id"]

    def messages_history(self, *, channel_id: str) -> list[dict]:
        """The whole history, oldest first, read backwards 100 at a time with `before=`."""
        messages: list[dict] = []
        before = ""
        while True:
            page = self.messages_list(channel_id=channel_id, before=before)
            messages[:0] = page
            if len(page) < PAGE_SIZE:
                return messages
            before = page[0]["id"]

    def attachment_download(self, *, url: str, max_bytes: int) -> bytes | None:
        """Download from the CDN (no token sent); None when larger than `max_bytes`. Raises DiscordError."""
        try:
            with self.cdn_session.get(url, stream=True) as response:
                if response.status_code >= 300:
                    raise DiscordError(status=response.status_code, message="attachment download failed")
                declared = int(response.headers.get("Content-Length") or 0)
                if declared > max_bytes:
                    return None
                data = bytearray()
                for chunk in response.iter_content(64 * 1024):
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        return None
                return bytes(data)
        except requests.RequestException as exc:  # the message would carry the signed URL: keep only the kind
            raise DiscordError(status=0, body=f"attachment download: no answer ({type(exc).__name__})") from exc

    # --- invites (added for the crowdfunding workflow, integrations/workflows/contact_invite.py) --------------------
    def invite_create(self, *, channel_id: str, max_age: int, role_ids: list[str] | None = None) -> dict:
        """A single-use invite (https://discord.com/developers/docs/resources/channel#create-channel-invite):
        `max_uses` 1, `unique` true, `max_age` from the caller (Discord's default of 24 hours would expire links read
        days later), `role_ids` granted on acceptance (needs MANAGE_ROLES). Answers the invite; the link is
        `https://discord.gg/<code>`. A POST: not retried on a 5xx or a lost answer (a second invite would be made); the
        workflow finds such an invite again with `channel_invites` (integrations/workflows/invites.py).

        A guild holds at most 1,000 invites: that refusal (code 30016) is raised with a message saying what to do.
        """
        body: dict[str, Any] = {"max_age": max_age, "max_uses": 1, "unique": True}
        if role_ids:
            body["role_ids"] = role_ids
        try:
            return self.request("POST", f"/channels/{channel_id}/invites", json=body)
        except DiscordError as exc:
            if exc.code == MAX_GUILD_INVITES:
                exc.message = (
                    "invites.create: the guild holds 1,000 invites, Discord's maximum (code 30016). Delete unused "
                    "invites in the server settings, or lower DISCORD_INVITE_MAX_AGE so they expire sooner."
                )
            raise

    def channel_invites(self, *, channel_id: str) -> list[dict]:
        """The channel's current invites (https://discord.com/developers/docs/resources/channel#get-channel-invites):
        invite objects with their metadata (`code`, `channel`, `inviter`, `uses`, `max_uses`, `max_age`, `created_at`
        ISO 8601, ...). Needs MANAGE_CHANNELS. A GET: retried on a 5xx or a lost answer. Used after an invite POST
        whose answer was lost, to find the invite it made."""
        return self.request("GET", f"/channels/{channel_id}/invites") or []

    def invite_delete(self, *, code: str) -> bool:
        """Revoke an invite (https://discord.com/developers/docs/resources/invite#delete-invite; needs MANAGE_CHANNELS
        on its channel or MANAGE_GUILD): the link stops working at once. False when Discord no longer knows it
        (Unknown Invite 10006: expired, used up, or deleted already), which is just as revoked. A DELETE: retried on
        a 5xx or a lost answer."""
        try:
            self.request("DELETE", f"/invites/{code}")
        except DiscordError as exc:
            if exc.status == 404 and exc.code == UNKNOWN_INVITE:
                return False
            raise
        return True

    def guild_commands_overwrite(self, *, guild_id: str, commands: list[dict]) -> list[dict]:
        """Replace the application's commands in a guild with `commands` (guild commands update at once)
        (https://discord.com/developers/docs/interactions/application-commands#bulk-overwrite-guild-application-commands).
        A PUT: the same list twice leaves the same commands, so it is retried like any PUT."""
        path = f"/applications/{self.application_id}/guilds/{guild_id}/commands"
        return self.request("PUT", path, json=commands) or []

    def dm_channel_create(self, *, recipient_id: str) -> dict:
        """The bot's direct-message channel with a user (https://discord.com/developers/docs/resources/user#create-dm)."""
        return self.request("POST", "/users/@me/channels", json={"recipient_id": recipient_id})

    # --- interaction responses (https://discord.com/developers/docs/interactions/receiving-and-responding) ----------
    def interaction_original_edit(self, *, interaction_token: str, payload: dict) -> dict:
        path = f"/webhooks/{self.application_id}/{interaction_token}/messages/@original"
        return self.request("PATCH", path, json=payload)

    def interaction_followup(self, *, interaction_token: str, payload: dict) -> dict:
        return self.request("POST", f"/webhooks/{self.application_id}/{interaction_token}", json=payload)
