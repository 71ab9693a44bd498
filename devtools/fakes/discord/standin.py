"""The Discord stand-in of the local run: the fake Discord of the tests, served by bin/run on 127.0.0.1, keeping its
channels and messages in var/ between runs.

Why a stand-in: the support schedules (reading ticket activity, closing inactive tickets) and the admin's ticket
actions (close, reopen) call Discord from the task cluster; without a bot token they would fail, and with one they
would act on a real server. config.settings.local points the Discord client here whenever DISCORD_BOT_TOKEN is unset.

The demo seed plays its tickets on a stand-in of its own with the replayed clock (devtools/demo/tickets.py), saves
what is left (the channels of the tickets still open) to the same file and asks a running stand-in to reload it with
`POST /_standin/reload`, which takes the stand-in's bot token like every API call.
"""

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests

from devtools.fakes.discord.interactions import BOT_TOKEN, CATEGORY_IDS
from devtools.fakes.discord.server import FakeDiscord
from devtools.fakes.server import FakeRequest, FakeResponse, route

logger = logging.getLogger(__name__)

# Attachments of a ticket still open must be there when it is closed, days later: the local CDN does not expire them.
LOCAL_ATTACHMENT_TTL = 365 * 86400


class DiscordStandIn(FakeDiscord):
    name = "discord-standin"

    def __init__(
        self,
        *,
        port: int,
        state_path: Path | None = None,
        autosave: bool = True,
        clock: Callable[[], datetime] | None = None,
    ):
        super().__init__("127.0.0.1", port, attachment_ttl=LOCAL_ATTACHMENT_TTL)
        self.state_path = state_path
        self.autosave = autosave
        self.clock = clock
        self._save_lock = threading.Lock()
        self.load()

    def _categories(self) -> None:
        """Both ticket categories of config.settings.local (the second takes tickets when the first is full)."""
        if CATEGORY_IDS[0] not in self.channels:
            self.add_category(CATEGORY_IDS[0], "tickets")
        if CATEGORY_IDS[1] not in self.channels:
            self.add_category(CATEGORY_IDS[1], "tickets-2")

    def now(self) -> datetime:
        return self.clock() if self.clock else super().now()

    # state in var/ --------------------------------------------------------------------------------------------------
    def load(self) -> None:
        with self.lock:
            self._load_file()
            self._categories()

    def _load_file(self) -> None:
        if self.state_path is None or not self.state_path.exists():
            return
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            logger.warning("Discord stand-in: %s is unreadable; starting empty", self.state_path)
            return
        self.channels = state.get("channels") or {}
        self.messages = state.get("messages") or {}
        self.invites = state.get("invites") or {}
        expires_at = time.time() + self.attachment_ttl
        self.cdn = {
            path: {**entry, "data": base64.b64decode(entry["data"]), "expires_at": expires_at}
            for path, entry in (state.get("cdn") or {}).items()
        }
        # The attachment URLs name the stand-in that stored them (the seed's, on another port): serve them here.
        for message in (m for messages in self.messages.values() for m in messages):
            for attachment in message.get("attachments") or []:
                parts = urlsplit(attachment["url"])
                attachment["url"] = attachment["proxy_url"] = f"{self.url}{parts.path}?{parts.query}"

    def save(self) -> None:
        if self.state_path is None:
            return
        with self._save_lock, self.lock:
            cdn = {
                path: {**entry, "data": base64.b64encode(entry["data"]).decode(), "expires_at": 0}
                for path, entry in self.cdn.items()
            }
            state = {"channels": self.channels, "messages": self.messages, "invites": self.invites, "cdn": cdn}
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.state_path.with_suffix(".tmp")
            partial.write_text(json.dumps(state))
            partial.replace(self.state_path)

    def _handle(self, request: FakeRequest) -> FakeResponse | None:
        response = super()._handle(request)
        if self.autosave and request.method != "GET" and response is not None and response.status < 300:
            self.save()
        return response

    @route("POST", r"/_standin/reload")
    def reload(self, request: FakeRequest):
        if request.header("authorization") != f"Bot {BOT_TOKEN}":
            return FakeResponse(401, {"message": "401: Unauthorized", "code": 0})
        self.load()
        with self.lock:
            return {"channels": len(self.channels)}


def standin_reload(*, api_url: str, timeout: float = 3.0) -> bool:
    """Ask the stand-in serving `api_url` to reload its state file; False when none answers (it loads the file when it
    starts)."""
    base = api_url.removesuffix("/").removesuffix(FakeDiscord.prefix)
    try:
        response = requests.post(
            f"{base}/_standin/reload", headers={"Authorization": f"Bot {BOT_TOKEN}"}, timeout=timeout
        )
    except requests.RequestException:
        return False
    return response.status_code == 200
