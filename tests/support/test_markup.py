"""Discord markup as a reader sees it: in the saved transcript and on the ticket's admin page (support/markup.py)."""

import re
import time
from datetime import UTC, datetime

import pytest

from devtools.fakes.discord import interactions as fake_discord
from support.markup import MarkupNames, render
from support.models import Ticket, TicketStatus
from tests.customers.factories import CustomerFactory
from tests.support.conftest import CUSTOMER_DISCORD_ID, STAFF_ID, open_ticket
from tests.support.factories import TicketFactory, TicketMessageFactory
from tests.support.test_working import close

pytestmark = pytest.mark.django_db

EMOJI_ID = "1234567890123456789"
DANCE_ID = "1234567890123456790"
# 2026-12-07 08:00:00 UTC, 09:00 in Berlin (CET)
MOMENT = 1796630400
NOW = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
OUR_TAGS = {"a", "strong", "em", "u", "s", "span", "code", "pre", "br", "blockquote", "time", "img"}
NAMES = MarkupNames(users={"1111111": "ana"}, roles={"2222222": "Staff"}, channels={"3333333": "ticket-7"})


def html_of(content: str, **kwargs) -> str:
    return str(render(content, names=NAMES, now=NOW, **kwargs))


def text_of(html: str) -> str:
    """What a reader sees: the text without tags (a block or a line break is a space), spaces collapsed."""
    blocks = re.sub(r"</?(br|div|p|blockquote|li|ul|ol|h\d|pre|span class=\"time\")\b[^>]*>", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", blocks).replace("\xa0", " ")).strip()


@pytest.fixture
def berlin(settings):
    settings.DISCORD_SUPPORT_TIMEZONE = "Europe/Berlin"


# --- the transcript, through the real close path ----------------------------------------------------------------------

EVERY_KIND = [
    "Hi <@&{role}>, I am <@{customer}>, <@!{staff}> helps, <@1999999999999999999> left; see <#{channel}>",
    "**Setup** *slanted* _also slanted_ __underlined__ ~~gone~~ ***both***",
    "Run `pip install **x**` then\n```py\nprint('<b>**not bold**</b>')\n```",
    "> quoted line\n> second\nnot quoted\n>>> all the rest\nis quoted",
    "The answer is ||42|| and [the docs](https://modready.example/docs) or https://modready.example/faq.",
    "t <t:{moment}:t> T <t:{moment}:T> d <t:{moment}:d> D <t:{moment}:D> f <t:{moment}:f> F <t:{moment}:F> "
    "plain <t:{moment}> R <t:{recent}:R>",
    "Thanks <:blobthanks:{emoji}> <a:dance:{dance}>",
    "# Steps\n- first\n- second",
]


@pytest.fixture
def closed_with_every_kind(discord, send, berlin):
    CustomerFactory(discord_user_id=CUSTOMER_DISCORD_ID)
    open_ticket(send)
    ticket = Ticket.objects.get()
    values = {
        "role": fake_discord.STAFF_ROLE_ID,
        "customer": CUSTOMER_DISCORD_ID,
        "staff": STAFF_ID,
        "channel": ticket.discord_channel_id,
        "moment": MOMENT,
        "recent": int(time.time()) - 3 * 86400 - 600,
        "emoji": EMOJI_ID,
        "dance": DANCE_ID,
    }
    discord.post_message(ticket.discord_channel_id, author_id=STAFF_ID, username="fonzie", content="On it")
    for content in EVERY_KIND:
        discord.post_message(ticket.discord_channel_id, author_id=CUSTOMER_DISCORD_ID, content=content.format(**values))
    close(send, ticket)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED
    return ticket


def test_transcript_renders_every_kind_of_discord_markup(closed_with_every_kind, admin_client):
    ticket = closed_with_every_kind
    page = admin_client.get(f"/admin/support/ticket/{ticket.pk}/transcript/")
    html = page.content.decode()
    seen = text_of(html)
    customer = ticket.discord_username
    # Mentions as names: the opening message's role and user mentions too (the issue's complaint).
    assert f"@Staff new Technical ticket from @{customer}" in seen
    assert f"Hi @Staff, I am @{customer}, @fonzie helps, @unknown-user left; see #ticket-{ticket.pk}" in seen
    assert "<@" not in html and "&lt;@" not in html and "&lt;#" not in html
    # Text styles
    assert "<strong>Setup</strong>" in html and "<em>slanted</em>" in html and "<em>also slanted</em>" in html
    assert "<u>underlined</u>" in html and "<s>gone</s>" in html and "<strong><em>both</em></strong>" in html
    # Code: shown literally, nothing inside it is markup
    assert "<code>pip install **x**</code>" in html
    assert '<pre><code data-language="py">print(&#x27;&lt;b&gt;**not bold**&lt;/b&gt;&#x27;)</code></pre>' in html
    # Quotes: one line each, and >>> to the end of the message
    assert "<blockquote>quoted line<br>second</blockquote>not quoted" in html
    assert "<blockquote>all the rest<br>is quoted</blockquote>" in html
    # Spoiler marked, readable without scripts; links safe
    assert '<span class="spoiler" title="Spoiler">42</span>' in html
    assert (
        '<a href="https://modready.example/docs" rel="noopener noreferrer nofollow" target="_blank">the docs</a>'
        in html
    )
    assert '<a href="https://modready.example/faq" rel="noopener noreferrer nofollow" target="_blank">' in html
    assert "https://modready.example/faq</a>." in html  # the sentence's full stop is not part of the link
    # Timestamps in every style, in the support timezone, UTC in the title
    assert (
        "t 09:00 T 09:00:00 d 2026-12-07 D 7 December 2026 f 7 December 2026 09:00 "
        "F Monday, 7 December 2026 09:00 plain 7 December 2026 09:00 R 3 days ago" in seen
    )
    assert 'title="2026-12-07 08:00:00 UTC"' in html and "&lt;t:" not in html
    # Custom emoji from Discord's CDN, and the transcript's CSP lets exactly those images in
    assert f'src="https://cdn.discordapp.com/emojis/{EMOJI_ID}.webp?size=48" alt=":blobthanks:"' in html
    assert f'src="https://cdn.discordapp.com/emojis/{DANCE_ID}.gif?size=48" alt=":dance:"' in html
    assert "img-src 'self' https://cdn.discordapp.com/emojis/;" in page["Content-Security-Policy"]
    # Headings and lists
    assert "<h3>Steps</h3><ul><li>first</li><li>second</li></ul>" in html


def test_the_ticket_admin_page_shows_the_stored_messages_rendered(closed_with_every_kind, admin_client):
    ticket = closed_with_every_kind
    html = admin_client.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()
    assert f"Hi @Staff, I am @{ticket.discord_username}, @fonzie helps" in text_of(html)
    assert "<strong>Setup</strong>" in html and '<span class="spoiler" title="Spoiler">42</span>' in html
    assert "Monday, 7 December 2026 09:00" in html and 'alt=":blobthanks:"' in html


def test_admin_page_of_a_ticket_without_stored_messages(admin_client):
    ticket = TicketFactory(status=TicketStatus.OPEN)
    page = admin_client.get(f"/admin/support/ticket/{ticket.pk}/change/")
    assert page.status_code == 200 and "no channel yet" in page.content.decode()


def test_admin_page_escapes_hostile_stored_messages(admin_client):
    ticket = TicketFactory(status=TicketStatus.CLOSED)
    TicketMessageFactory(ticket=ticket, content='<script>alert("x")</script> **<img src=x onerror=alert(1)>**')
    html = admin_client.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "<strong>&lt;img src=x onerror=alert(1)&gt;</strong>" in html


# --- the renderer on its own ------------------------------------------------------------------------------------------


def test_mentions_use_known_names_and_fall_back(berlin):
    html = html_of("<@1111111> <@!1111111> <@&2222222> <#3333333> <@42424242> <@&42424242> <#42424242> @everyone")
    assert text_of(html) == "@ana @ana @Staff #ticket-7 @unknown-user @role #unknown-channel @everyone"


def test_relative_timestamps_both_ways_with_the_absolute_date_in_the_title(berlin):
    past = html_of(f"<t:{MOMENT}:R>")
    assert text_of(past) == "3 days ago"
    assert 'title="Monday, 7 December 2026 09:00 (2026-12-07 08:00:00 UTC)"' in past
    assert text_of(html_of(f"<t:{MOMENT + 14 * 86400 + 13 * 86400}:R>")) == "in 3 weeks"


def test_the_support_timezone_is_used(settings):
    settings.DISCORD_SUPPORT_TIMEZONE = "America/New_York"
    assert text_of(html_of(f"<t:{MOMENT}:t>")) == "03:00"


def test_an_impossible_timestamp_stays_text(berlin):
    assert html_of("<t:99999999999999:F>") == "&lt;t:99999999999999:F&gt;"


def test_escaped_markup_and_words_with_underscores_stay_literal(berlin):
    assert html_of(r"\*not italic\* snake_case_name 2*3") == "*not italic* snake_case_name 2*3"


@pytest.mark.parametrize(
    ("content", "forbidden"),
    [
        ("<script>alert(1)</script>", "<script"),
        ('<img src=x onerror="alert(1)">', "<img src=x"),
        ("[click](javascript:alert(1))", 'href="javascript'),
        ('[click](https://ex.com/"onmouseover="alert(1))', '"onmouseover'),
        ('[<b onclick="x">bold</b>](https://ex.com)', "<b onclick"),
        ("[**x** https://inner.example](https://ex.com)", 'href="https://inner.example'),
        ("**__~~||<iframe src=//evil>||~~__**", "<iframe"),
        ("`<script>`", "<script"),
        ("```\n</code></pre><script>x</script>\n```", "<script"),
        ('<:x" onerror="alert(1):123456789>', 'onerror="'),
        ('<t:1796630400:F"><script>', "<script"),
        ('<https://ex.com/"><script>>', "<script"),
        ("data:text/html,<script>alert(1)</script>", "<script"),
    ],
)
def test_hostile_content_never_reaches_the_page_as_html(berlin, content, forbidden):
    html = html_of(content)
    assert forbidden not in html
    assert set(re.findall(r"</?(\w+)", html)) <= OUR_TAGS
    for href in re.findall(r'href="([^"]*)"', html):
        assert href.startswith(("https://", "http://")) and '"' not in href


def test_only_our_tags_appear_in_hostile_nested_markup(berlin):
    html = html_of('**a *b* __c ~~d ||<svg onload=alert(1)>||~~__** [x](https://e.com/?a=<b>&c="d")')
    assert html.startswith(
        '<strong>a <em>b</em> <u>c <s>d <span class="spoiler" title="Spoiler">&lt;svg onload=alert(1)&gt;</span>'
        "</s></u></strong>"
    )
    assert set(re.findall(r"</?(\w+)", html)) <= {"strong", "em", "u", "s", "span", "a"} and "<b>" not in html
