"""Discord message markup as a reader sees it, rendered to safe HTML (saved transcripts, the ticket's admin page).

Why our own small tokenizer: no maintained Python library does this job. `discord-markdown` (last release 2020) and
`discord-markdown-ast-parser` (2021) are abandoned and know no timestamps, spoilers or custom emoji;
`chat-exporter`, `discordtranscript` and `py-discord-html-transcripts` render discord.py `Message` objects (a bot
library and its gateway objects we do not have); `discord-markdown-py` ships a compiled module without source link,
licence or documentation. Mistune or markdown-it would need a plugin for each Discord rule and switching off most
of CommonMark (raw HTML, paragraphs, `_` rules), which is more code than this.

Everything from a message is escaped; HTML comes only from the rules below. Code (inline and fenced) is escaped and
never parsed further. Links are only http/https, with rel="noopener noreferrer nofollow". Names for mentions come
from what the ticket knows (`names_for_ticket`); an unknown id is shown as @unknown-user, @role or #unknown-channel.
Rules follow https://support.discord.com/hc/en-us/articles/210298617 (Markdown Text 101) and
https://discord.com/developers/docs/reference#message-formatting (mentions, emoji, timestamps).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import dateformat, timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince, timeuntil

EMOJI_CDN = "https://cdn.discordapp.com/emojis"
LINK_REL = "noopener noreferrer nofollow"

# Discord's timestamp styles, in the support timezone (24-hour clock, day before month, as staff read them).
TIMESTAMP_FORMATS = {
    "t": "H:i",
    "T": "H:i:s",
    "d": "Y-m-d",
    "D": "j F Y",
    "f": "j F Y H:i",
    "F": "l, j F Y H:i",
}


@dataclass(frozen=True)
class MarkupNames:
    """Display names by Discord id: users, roles, channels."""

    users: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=dict)


def _user_name(user: dict) -> str:
    return user.get("global_name") or user.get("username") or ""


def names_for_ticket(ticket, messages: Iterable[dict] = ()) -> MarkupNames:
    """Names the ticket knows: the customer's Discord user, staff who claimed, answered or closed it, every message's
    author and the users Discord listed as mentioned (REST message objects: `author`, `mentions`)."""
    users = {
        ticket.first_responder_discord_id: ticket.first_responder_name,
        ticket.claimed_by_discord_id: ticket.claimed_by_name,
        ticket.closed_by_discord_id: ticket.closed_by_name,
        ticket.discord_user_id: ticket.discord_username,
    }
    for message in messages:
        for user in [message.get("author") or {}, *(message.get("mentions") or [])]:
            if user.get("id") and _user_name(user):
                users[str(user["id"])] = _user_name(user)
    from .category_roles import role_names  # the categories' own staff roles (a model read)

    roles = role_names()
    channels = {settings.DISCORD_SUPPORT_CHANNEL_ID: "support"}
    if ticket.discord_channel_id and ticket.pk:
        channels[ticket.discord_channel_id] = ticket.channel_name
    return MarkupNames(
        users={k: v for k, v in users.items() if k and v},
        roles={k: v for k, v in roles.items() if k},
        channels={k: v for k, v in channels.items() if k},
    )


def names_for_stored_messages(ticket, messages: Iterable) -> MarkupNames:
    """The same names for messages already stored (`TicketMessage` rows: author id and name)."""
    as_dicts = [{"author": {"id": m.author_id, "username": m.author_name}} for m in messages]
    return names_for_ticket(ticket, as_dicts)


# --- inline rules -------------------------------------------------------------------------------------------------
# One alternation: the leftmost match wins, and at one position the earlier rule (so ``` before `, *** before **).
_INLINE = re.compile(
    r"(?P<escaped>\\(?P<escaped_char>[\\*_~`|<>#\[\]()-]))"
    r"|``(?P<code2>.+?)``"
    r"|`(?P<code>[^`]+)`"
    r"|<(?P<animated>a?):(?P<emoji_name>\w{2,32}):(?P<emoji_id>\d{5,25})>"
    r"|<t:(?P<unix>-?\d{1,13})(?::(?P<style>[tTdDfFR]))?>"
    r"|<@!?(?P<user>\d{5,25})>"
    r"|<@&(?P<role>\d{5,25})>"
    r"|<#(?P<channel>\d{5,25})>"
    r"|\[(?P<link_text>[^\[\]\n]+)\]\(<?(?P<link_url>https?://[^\s()<>]+)>?\)"
    r"|<(?P<angle_url>https?://[^\s<>]+)>"
    r"|(?P<url>https?://[^\s<>]*[^\s<>.,:;\"')\]!?*~|])"
    r"|\|\|(?P<spoiler>.+?)\|\|"
    r"|\*\*\*(?P<bold_italic>[^*].*?)\*\*\*"
    r"|\*\*(?P<bold>[^*].*?)\*\*"
    r"|__(?P<underline>[^_].*?)__"
    r"|~~(?P<strike>.+?)~~"
    r"|\*(?P<italic>[^\s*](?:.*?[^\s*\\])??)\*"
    r"|\b_(?P<italic_underscore>[^\s_](?:.*?[^\s_\\])??)_\b",
    re.DOTALL,
)

_WRAPPERS = {
    "spoiler": ('<span class="spoiler" title="Spoiler">', "</span>"),
    "bold_italic": ("<strong><em>", "</em></strong>"),
    "bold": ("<strong>", "</strong>"),
    "underline": ("<u>", "</u>"),
    "strike": ("<s>", "</s>"),
    "italic": ("<em>", "</em>"),
    "italic_underscore": ("<em>", "</em>"),
}


@dataclass(frozen=True)
class _Context:
    names: MarkupNames
    now: datetime
    zone: ZoneInfo


def _link(url: str, text_html: str) -> str:
    return f'<a href="{escape(url)}" rel="{LINK_REL}" target="_blank">{text_html}</a>'


def _timestamp(unix: str, style: str | None, ctx: _Context) -> str | None:
    try:
        moment = datetime.fromtimestamp(int(unix), tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    local = moment.astimezone(ctx.zone)
    absolute = dateformat.format(local, TIMESTAMP_FORMATS["F"])
    if style == "R":
        shown = (
            f"{timesince(moment, ctx.now, depth=1)} ago"
            if moment <= ctx.now
            else f"in {timeuntil(moment, ctx.now, depth=1)}"
        )
        title = f"{absolute} ({moment:%Y-%m-%d %H:%M:%S} UTC)"
    else:
        shown = dateformat.format(local, TIMESTAMP_FORMATS[style or "f"])
        title = f"{moment:%Y-%m-%d %H:%M:%S} UTC"
    return f'<time datetime="{moment.isoformat()}" title="{escape(title)}">{escape(shown)}</time>'


def _mention(match: re.Match, ctx: _Context) -> str:
    names = ctx.names
    if match["user"]:
        return f'<span class="mention">@{escape(names.users.get(match["user"], "unknown-user"))}</span>'
    if match["role"]:
        return f'<span class="mention">@{escape(names.roles.get(match["role"], "role"))}</span>'
    return f'<span class="mention">#{escape(names.channels.get(match["channel"], "unknown-channel"))}</span>'


def _emoji(match: re.Match) -> str:
    extension = "gif" if match["animated"] else "webp"
    name = escape(f":{match['emoji_name']}:")
    return (
        f'<img class="emoji" src="{EMOJI_CDN}/{match["emoji_id"]}.{extension}?size=48" alt="{name}" title="{name}" '
        'width="22" height="22">'
    )


def _render_match(match: re.Match, ctx: _Context, links: bool) -> str:
    kind = match.lastgroup
    if kind == "escaped":
        return escape(match["escaped_char"])
    if match["code2"] is not None or match["code"] is not None:
        return f"<code>{escape(match['code2'] or match['code'])}</code>"
    if match["emoji_id"]:
        return _emoji(match)
    if match["unix"]:
        return _timestamp(match["unix"], match["style"], ctx) or escape(match.group(0))
    if match["user"] or match["role"] or match["channel"]:
        return _mention(match, ctx)
    if match["link_url"]:
        text = _inline(match["link_text"], ctx, links=False)
        return _link(match["link_url"], text) if links else f"{text} ({escape(match['link_url'])})"
    url = match["angle_url"] or match["url"]
    if url:
        return _link(url, escape(url)) if links else escape(url)
    opening, closing = _WRAPPERS[kind]
    return f"{opening}{_inline(match[kind], ctx, links)}{closing}"


def _inline(text: str, ctx: _Context, links: bool = True) -> str:
    """Escaped text with the inline rules applied; no links inside a masked link's text (no nested anchors)."""
    out, position = [], 0
    for match in _INLINE.finditer(text):
        out.append(escape(text[position : match.start()]))
        out.append(_render_match(match, ctx, links))
        position = match.end()
    out.append(escape(text[position:]))
    return "".join(out)


# --- block rules --------------------------------------------------------------------------------------------------
_FENCE = re.compile(r"```(?:(?P<language>[\w+#.-]{1,30})\n)?\n?(?P<code>.*?)```", re.DOTALL)
_HEADING = re.compile(r"^(#{1,3}) +(\S.*)$")
_BULLET = re.compile(r"^\s*[-*] +(.*)$")
_NUMBERED = re.compile(r"^\s*\d{1,3}\. +(.*)$")


def _lines(lines: list[str], ctx: _Context) -> str:
    """Headings, lists and plain lines (inside or outside a quote)."""
    out: list[str] = []
    items: list[str] = []
    list_tag = ""
    for line in lines:
        bullet, numbered = _BULLET.match(line), _NUMBERED.match(line)
        tag = "ul" if bullet else "ol" if numbered else ""
        if items and tag != list_tag:
            out.append(f"<{list_tag}>{''.join(items)}</{list_tag}>")
            items = []
        if tag:
            list_tag = tag
            items.append(f"<li>{_inline((bullet or numbered)[1], ctx)}</li>")
        elif heading := _HEADING.match(line):
            level = len(heading[1]) + 2  # h3-h5: the page's own title keeps h1 and h2
            out.append(f"<h{level}>{_inline(heading[2], ctx)}</h{level}>")
        else:
            out.append(_inline(line, ctx) + "<br>")
    if items:
        out.append(f"<{list_tag}>{''.join(items)}</{list_tag}>")
    return "".join(out).removesuffix("<br>")


def _blocks(text: str, ctx: _Context) -> str:
    """Quotes (`> ` per line, `>>> ` to the end) around the other block rules."""
    out: list[str] = []
    plain: list[str] = []
    quoted: list[str] = []
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if line.startswith(">>> "):
            quoted.extend([line[4:], *lines[index + 1 :]])
            break
        if line.startswith("> ") or line == ">":
            if plain:
                out.append(_lines(plain, ctx))
                plain = []
            quoted.append(line[2:])
            continue
        if quoted:
            out.append(f"<blockquote>{_lines(quoted, ctx)}</blockquote>")
            quoted = []
        plain.append(line)
    if plain:
        out.append(_lines(plain, ctx))
    if quoted:
        out.append(f"<blockquote>{_lines(quoted, ctx)}</blockquote>")
    return "".join(out)


def render(content: str, *, names: MarkupNames, now: datetime | None = None) -> SafeString:
    """A message's content as HTML a reader expects; nothing from the content reaches the page unescaped."""
    ctx = _Context(names=names, now=now or timezone.now(), zone=ZoneInfo(settings.DISCORD_SUPPORT_TIMEZONE))
    out, position = [], 0
    for fence in _FENCE.finditer(content):
        out.append(_blocks(content[position : fence.start()].strip("\n"), ctx))
        language = f' data-language="{escape(fence["language"])}"' if fence["language"] else ""
        out.append(f"<pre><code{language}>{escape(fence['code'].rstrip(chr(10)))}</code></pre>")
        position = fence.end()
    out.append(_blocks(content[position:].strip("\n"), ctx))
    return mark_safe("".join(part for part in out if part))  # noqa: S308 - every piece above is escaped or ours
