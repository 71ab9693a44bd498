"""Which ticket category a new channel goes into: the first configured one that still has room.

Discord holds at most 50 channels in a category and answers a create in a full one with 400, code 50035 naming
`parent_id` (https://discord.com/developers/docs/resources/guild#create-guild-channel; docs/support.md). The opening
task lists the guild's channels anyway (to find a channel a lost answer created), so it counts each category's
channels from that same listing and skips the full ones instead of asking Discord to refuse them one by one: in a
burst of openings, trying the first category every time got most creations refused. A category that fills between
the listing and the create still answers 50035, and the caller moves on to the next one.
"""

from collections import Counter
from collections.abc import Iterable

CATEGORY_CHANNEL_LIMIT = 50  # Discord's fixed limit per category


def categories_with_room(
    *, channels: Iterable[dict], category_ids: Iterable[str], limit: int = CATEGORY_CHANNEL_LIMIT
) -> list[str]:
    """The configured categories, in their order, that held fewer than `limit` channels in this listing."""
    per_category = Counter(str(c.get("parent_id")) for c in channels if c.get("parent_id"))
    return [str(category_id) for category_id in category_ids if per_category[str(category_id)] < limit]
