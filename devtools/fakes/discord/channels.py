"""The fake Discord's guild channels, permission overwrites and invites (devtools/fakes/discord/server.py)."""

import hashlib
import itertools
import time
from datetime import UTC, datetime

from devtools.fakes.discord.interactions import APPLICATION_ID, GUILD_ID, snowflake, user_object
from devtools.fakes.server import FakeRequest, FakeResponse, route

_invite_sequence = itertools.count(1)


class ChannelRoutes:
    """Routes of FakeDiscord: its state and helpers are in server.py."""

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
            code = hashlib.sha256(f"invite-{next(_invite_sequence)}-{time.time_ns()}".encode()).hexdigest()[:10]
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
            code = hashlib.sha256(f"other-{next(_invite_sequence)}-{time.time_ns()}".encode()).hexdigest()[:10]
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
