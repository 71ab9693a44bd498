"""Whether Discord hid the text of a channel's messages from us.

Without the privileged Message Content intent (developer portal, Bot page), REST reads return other users' messages
with empty `content`, `embeds`, `attachments`, `components` and `poll`; the bot's own messages, messages that mention
it, and DMs keep theirs (https://discord.com/developers/docs/events/gateway#message-content-intent). A message as
Discord stores it is never empty: it holds text, an embed, a file, a sticker, a poll or a forwarded message. So a
user's ordinary message (type 0, or 19 a reply) that carries none of these was emptied by Discord, and a transcript
saved from that read would be empty while the channel, the only full copy, is deleted.
"""

from dataclasses import dataclass

# https://discord.com/developers/docs/resources/message#message-object-message-types
USER_MESSAGE_TYPES = (0, 19)  # DEFAULT, REPLY
CARRIERS = ("content", "embeds", "attachments", "components", "sticker_items", "poll", "message_snapshots")


class MessageContentMissing(Exception):
    """The channel's messages came back without their text: the close is held, the channel kept."""

    def __init__(self, *, hidden: int, total: int):
        self.hidden, self.total = hidden, total
        super().__init__(
            f"Discord returned {hidden} of {total} customer and staff messages without their text (the bot's Message "
            "Content intent is off), so no transcript was saved and the channel was kept. Closing is retried every 5 "
            "minutes once the intent is turned on."
        )


@dataclass(frozen=True)
class ContentCheck:
    user_messages: int  # ordinary messages by anyone but our bot
    hidden: int  # of those, how many came back with nothing in them

    @property
    def content_missing(self) -> bool:
        return self.hidden > 0

    @property
    def content_seen(self) -> bool:
        """At least one user's message came back with its text: the intent is on."""
        return self.user_messages > self.hidden


def content_check(messages: list[dict], *, bot_user_id: str) -> ContentCheck:
    users = hidden = 0
    for message in messages:
        author = message.get("author") or {}
        if str(author.get("id")) == str(bot_user_id) or message.get("type", 0) not in USER_MESSAGE_TYPES:
            continue
        users += 1
        if not any(message.get(key) for key in CARRIERS):
            hidden += 1
    return ContentCheck(user_messages=users, hidden=hidden)
