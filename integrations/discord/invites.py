"""Discord invites (https://discord.com/developers/docs/resources/channel#create-channel-invite).

Written here on the shared session because the support issue's Discord client had not landed when the crowdfunding
workflow needed it; it follows the same rules (Bot token, Discord's User-Agent, Retry-After and the 429 body's
`retry_after`, one typed error) and can move onto that client unchanged.

Every invite is single-use (`max_uses` 1, `unique` true) with `max_age` from settings (Discord's default of 24 hours
would silently expire links read days later) and optional `role_ids` granted on acceptance. A guild holds at most
1,000 invites: Discord answers code 30016, raised as `DiscordInviteError` with `is_invite_limit`.
"""

import json
import threading
import time
from dataclasses import dataclass

import requests
from django.conf import settings

from integrations import config
from integrations.http import ApiClient, ProviderError, json_or_error

MAX_INVITES_REACHED = 30016


class DiscordInviteError(ProviderError):
    provider = "discord"

    @property
    def code(self) -> int | None:
        try:
            return int(json.loads(self.body).get("code"))
        except (ValueError, TypeError, AttributeError):
            return None

    @property
    def is_invite_limit(self) -> bool:
        return self.code == MAX_INVITES_REACHED

    def __str__(self) -> str:
        if self.is_invite_limit:
            return (
                "discord invites.create error: the guild holds 1,000 invites, Discord's maximum (code 30016). "
                "Delete unused invites in the server settings, or lower DISCORD_INVITE_MAX_AGE so they expire."
            )
        return super().__str__()


@dataclass
class Invite:
    code: str

    @property
    def url(self) -> str:
        return f"https://discord.gg/{self.code}"


class DiscordInviteClient(ApiClient):
    error_class = DiscordInviteError
    retries = 4

    def __init__(self, *, base_url: str, token: str, **kwargs):
        super().__init__(
            base_url=base_url,
            headers={
                "Authorization": f"Bot {token}",
                "User-Agent": "DiscordBot (https://modready.example, 1.0)",
            },
            **kwargs,
        )
        self._bucket_lock = threading.Lock()
        self._not_before = 0.0

    @classmethod
    def from_settings(cls) -> "DiscordInviteClient":
        config.require("DISCORD_INVITES_ENABLED")
        return cls(base_url=settings.DISCORD_API_URL, token=settings.DISCORD_BOT_TOKEN)

    def prepare(self, call: str) -> None:
        # The bucket said it was empty: wait for its reset instead of collecting 429s (Discord bans IPs that
        # collect too many).
        with self._bucket_lock:
            delay = self._not_before - time.monotonic()
        if delay > 0:
            time.sleep(min(delay, self.max_wait))

    def wait_seconds(self, response: requests.Response) -> float | None:
        try:
            return float(response.json()["retry_after"])
        except (ValueError, KeyError, TypeError):
            return super().wait_seconds(response)

    def request(self, call, method, path, **kwargs):
        response = super().request(call, method, path, **kwargs)
        remaining, reset_after = (
            response.headers.get("X-RateLimit-Remaining"),
            response.headers.get("X-RateLimit-Reset-After"),
        )
        if remaining == "0" and reset_after:
            with self._bucket_lock:
                self._not_before = max(self._not_before, time.monotonic() + float(reset_after))
        return response

    def invite_create(self, *, channel_id: str, max_age: int, role_ids: list[str] | None = None) -> Invite:
        """One single-use invite. Not retried on a lost answer: a retry would make a second invite, which is
        harmless (unused, it expires) but the caller decides."""
        body = {"max_age": max_age, "max_uses": 1, "unique": True}
        if role_ids:
            body["role_ids"] = role_ids
        response = self.request("invites.create", "POST", f"/channels/{channel_id}/invites", json=body)
        return Invite(code=json_or_error(response, DiscordInviteError, "invites.create")["code"])
