"""The fake Discord's bot user, messages, DMs, CDN and interaction webhooks (devtools/fakes/discord/server.py)."""

import json
import time
from email.parser import BytesParser
from email.policy import HTTP

from devtools.fakes.discord.interactions import APPLICATION_ID, snowflake, user_object
from devtools.fakes.server import FakeRequest, FakeResponse, route


class MessageRoutes:
    """Routes of FakeDiscord: its state and helpers are in server.py."""

    # --- the bot user -----------------------------------------------------------------------------------------------
    @route("GET", r"/api/v10/users/@me")
    def current_user(self, request: FakeRequest):
        """https://discord.com/developers/docs/resources/user#get-current-user: the cheapest token check."""
        return {**user_object(APPLICATION_ID, "ModReady"), "bot": True}

    # --- messages ---------------------------------------------------------------------------------------------------
    @route("POST", r"/api/v10/channels/(?P<channel_id>\d+)/messages")
    def message_create(self, request: FakeRequest):
        """Create Message, JSON or multipart (`payload_json` + `files[n]`). With `nonce` and `enforce_nonce`, a repeat
        by the same author within minutes answers the message already created instead of posting a second one
        (https://discord.com/developers/docs/resources/message#create-message-jsonform-params). A DM to a user who
        closed DMs from server members answers 403, code 50007."""
        channel_id = request.params["channel_id"]
        payload, files = _message_body(request)
        nonce = str(payload.get("nonce") or "")
        with self.lock:
            channel = self.channels.get(channel_id)
            if channel is None:
                return self._error(404, 10003, "Unknown Channel")
            if channel["type"] == 1 and channel["recipients"][0]["id"] in self.dms_closed:
                return self._error(403, 50007, "Cannot send messages to this user")
            if nonce and payload.get("enforce_nonce") and (APPLICATION_ID, nonce) in self.nonces:
                return self.nonces[(APPLICATION_ID, nonce)]
            if not any(payload.get(k) for k in ("content", "embeds", "components")) and not files:
                return self._error(400, 50006, "Cannot send an empty message")
            bot = {**user_object(APPLICATION_ID, "ModReady"), "bot": True}
            message = self._message(channel_id, snowflake(self.now()), bot, payload)
            for filename, data, content_type in files:
                message["attachments"].append(self._store_attachment(channel_id, filename, data, content_type))
            if nonce:
                message["nonce"] = nonce
                self.nonces[(APPLICATION_ID, nonce)] = message
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
        """https://discord.com/developers/docs/resources/message#get-channel-messages: `limit` 1 to 100 (default 50);
        outside that Discord refuses the call (400, 50035) rather than clamping it."""
        channel_id = request.params["channel_id"]
        raw_limit = (request.query.get("limit") or ["50"])[0]
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            return self._error(
                400,
                50035,
                "Invalid Form Body",
                {"limit": {"_errors": [{"code": "NUMBER_TYPE_MAX", "message": "Must be between 1 and 100."}]}},
            )
        limit = int(raw_limit)
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

    # --- application commands ---------------------------------------------------------------------------------------
    @route("PUT", r"/api/v10/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands")
    def guild_commands_overwrite(self, request: FakeRequest):
        """https://discord.com/developers/docs/interactions/application-commands#bulk-overwrite-guild-application-commands:
        the list replaces the guild's commands; each gets an id, the application and guild ids and a version."""
        body = request.json()
        if not isinstance(body, list) or any(not isinstance(c, dict) or not c.get("name") for c in body):
            return self._error(400, 50035, "Invalid Form Body")
        with self.lock:
            if request.params["app_id"] != APPLICATION_ID:
                return self._error(403, 50001, "Missing Access")
            commands = []
            for command in body:
                known = next((c for c in self.commands if c["name"] == command["name"]), None)
                commands.append(
                    {
                        "type": 1,
                        **command,
                        "id": known["id"] if known else snowflake(self.now()),
                        "application_id": APPLICATION_ID,
                        "guild_id": request.params["guild_id"],
                        "version": snowflake(self.now()),
                    }
                )
            self.commands = commands
            return commands

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


def _message_body(request: FakeRequest) -> tuple[dict, list[tuple[str, bytes, str]]]:
    """The JSON payload and the files of a Create Message request (JSON, or multipart with `payload_json`)."""
    content_type = request.header("content-type")
    if not content_type.startswith("multipart/form-data"):
        return request.json() or {}, []
    parsed = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + request.body)
    payload: dict = {}
    files = []
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if name == "payload_json":
            payload = json.loads(data or b"{}")
        elif name and name.startswith("files["):
            files.append((part.get_filename() or "file", data, part.get_content_type()))
    return payload, files
