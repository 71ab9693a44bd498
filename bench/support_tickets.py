"""Discord support: the interactions endpoint's answer time under load, and the close of a long ticket.

    bin/bench support_tickets [--interactions 320] [--concurrency 16] [--messages 2000] [--close-runs 2]
                              [--part all|interactions|page] [--page-messages 250] [--page-runs 7]
                              [--latency-ms 80-150]

1. Answer time. The app runs under gunicorn on 127.0.0.1 (the bench database). Signed interactions are POSTed over
   `--concurrency` keep-alive connections, one kind at a time: PING (signature check only: the baseline), the panel
   button (answered with the modal), and the modal submit (guard rails, customer lookup, triage, ticket insert, task
   enqueue; each from a different user). Printed: p50/p99 per kind and the ratio to PING. Discord's limit is 3 s.
2. Close time. A ticket whose channel in the fake Discord (its own process, TCP on 127.0.0.1) holds `--messages`
   messages, one in 50 with a 2 KB attachment, is closed in this process: history read 100 at a time, attachments
   downloaded, transcript stored and rendered, channel deleted. Baseline: reading the same history alone.
3. The ticket page. An open ticket whose channel holds `--page-messages` messages (one in 25 with an image, markup
   in every tenth), the fake Discord (its own process) answering each call after a random `--latency-ms` delay. A
   Support-role user's GET of the ticket page in this process (Django's test client: the whole admin view, template
   and queries, no network in front), `--page-runs` times each: cold (cache emptied: the history is read from
   Discord, 100 messages a call) and warm (the 30-second cache). Printed: medians, min/max, Discord calls per view.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import requests_over_connections
from bench.stripe_ingest import free_port, serve_fake_in_child, wait_for_http

ROOT = Path(__file__).resolve().parent.parent


def discord_env(fake_url: str) -> dict[str, str]:
    from devtools.fakes.discord import interactions as fake

    return {
        "DISCORD_API_URL": fake_url + "/api/v10",
        "DISCORD_APPLICATION_ID": fake.APPLICATION_ID,
        "DISCORD_PUBLIC_KEY": fake.PUBLIC_KEY_HEX,
        "DISCORD_BOT_TOKEN": fake.BOT_TOKEN,
        "DISCORD_GUILD_ID": fake.GUILD_ID,
        "DISCORD_STAFF_ROLE_ID": fake.STAFF_ROLE_ID,
        "DISCORD_SUPPORT_CHANNEL_ID": fake.SUPPORT_CHANNEL_ID,
        "DISCORD_TICKET_CATEGORY_IDS": ",".join(fake.CATEGORY_IDS),
        "DISCORD_SUPPORT_HOURS": "",
        "DISCORD_MAX_OPEN_TICKETS_PER_USER": "1000",
    }


def post_signed(port: int, bodies: list[bytes], concurrency: int) -> tuple[list[float], list[int], float]:
    """POST each body, signed just before sending, over `concurrency` keep-alive connections."""
    from devtools.fakes.discord.interactions import sign_interaction

    return requests_over_connections(
        port=port,
        path="/api/discord/interactions",
        bodies=bodies,
        concurrency=concurrency,
        headers_for=sign_interaction,
        timeout=30,
    )


def interaction_bodies(kind: str, count: int, offset: int) -> list[bytes]:
    from devtools.fakes.discord import interactions as fake

    bodies = []
    for i in range(count):
        user_id = str(1900000000000000000 + offset + i)
        if kind == "ping":
            payload = {"type": 1, "id": fake.snowflake(), "application_id": fake.APPLICATION_ID}
        elif kind == "button (modal)":
            payload = fake.button_click("ticket:open", user_id=user_id)
        else:
            fields = {
                "category": ["other"],
                "subject": "Server crashes after installing mods",
                "description": "Since the last update the server lags and then crashes with an error.",
                "email": "",
            }
            payload = fake.modal_submit("ticket:open-modal", fields, user_id=user_id)
        bodies.append(json.dumps(payload).encode())
    return bodies


def close_tickets_prepare(fake, *, runs: int, messages: int) -> list[int]:
    from datetime import UTC, datetime, timedelta

    from support.models import Ticket, TicketStatus

    ticket_ids = []
    for run in range(runs):
        ticket = Ticket.objects.create(
            discord_user_id=str(1800000000000000000 + run),
            category="technical",
            subject=f"Bench ticket {run}",
            status=TicketStatus.CLOSING,
            close_requested_at=datetime.now(UTC),
            closed_by_name="bench",
        )
        channel_id = _ticket_channel_add(fake, ticket)
        start = datetime.now(UTC) - timedelta(hours=3)
        for i in range(messages):
            attachments = [(f"log-{i}.txt", os.urandom(1024).hex().encode(), "text/plain")] if i % 50 == 0 else None
            fake.post_message(
                channel_id,
                author_id="1700000000000000001" if i % 2 else "1600000000000000001",
                content=f"message {i}: " + "the server lags when more than ten players join " * 2,
                attachments=attachments,
                at=start + timedelta(seconds=i),
            )
        Ticket.objects.filter(pk=ticket.pk).update(discord_channel_id=channel_id)
        ticket_ids.append(ticket.pk)
    return ticket_ids


def _ticket_channel_add(fake, ticket) -> str:
    """An empty ticket channel for `ticket` in the first ticket category of the fake Discord; returns its id."""
    from devtools.fakes.discord import interactions as fake_discord

    channel_id = fake_discord.snowflake()
    fake.channels[channel_id] = {
        "id": channel_id,
        "type": 0,
        "name": ticket.channel_name,
        "guild_id": fake_discord.GUILD_ID,
        "parent_id": fake_discord.CATEGORY_IDS[0],
        "permission_overwrites": [],
    }
    fake.messages[channel_id] = []
    return channel_id


class LaggyDiscord:
    """A fake Discord whose every answer waits a random time in [low, high] seconds, as a real one over the internet."""

    @staticmethod
    def build(low: float, high: float):
        import random

        from devtools.fakes.discord.server import FakeDiscord

        class Laggy(FakeDiscord):
            @property
            def latency(self) -> float:
                return random.uniform(low, high)

            @latency.setter
            def latency(self, value: float) -> None:  # the harness sets 0.0; the range wins
                pass

        return Laggy()


def page_ticket_prepare(fake, *, messages: int) -> int:
    """An open ticket of a Support customer with `messages` in its channel."""
    from datetime import UTC, datetime, timedelta

    from support.models import Ticket, TicketStatus
    from tests.customers.factories import CustomerFactory

    customer = CustomerFactory(discord_user_id="1700000000000000001", vip_status=True)
    ticket = Ticket.objects.create(
        customer=customer,
        customer_link="discord",
        discord_user_id="1700000000000000001",
        discord_username="alexm",
        category="technical",
        subject="Bench: the page of a long ticket",
        status=TicketStatus.OPEN,
    )
    channel_id = _ticket_channel_add(fake, ticket)
    start = datetime.now(UTC) - timedelta(hours=5)
    for i in range(messages):
        markup = " **bold** <t:1796630400:F> <@&1300000000000000001> ||spoiler|| `code`" if i % 10 == 0 else ""
        fake.post_message(
            channel_id,
            author_id="1700000000000000001" if i % 2 else "1600000000000000001",
            content=f"message {i}: the server lags when more than ten players join{markup}",
            attachments=[(f"shot-{i}.png", b"\x89PNG" + os.urandom(512), "image/png")] if i % 25 == 0 else None,
            at=start + timedelta(seconds=30 * i),
        )
    Ticket.objects.filter(pk=ticket.pk).update(discord_channel_id=channel_id)
    return ticket.pk


def page_bench(ticket_id: int, *, runs: int, messages: int, latency: str) -> None:
    from django.contrib.auth.models import Group
    from django.core.cache import cache
    from django.test import Client

    from bench.harness import Table, median
    from tests.customers.factories import StaffUserFactory

    user = StaffUserFactory(username="bench-support")
    user.groups.add(Group.objects.get(name="Support"))
    client = Client()
    client.force_login(user)
    url = f"/admin/support/ticket/{ticket_id}/change/"

    from integrations.discord.client import DiscordClient

    calls = {"n": 0}
    request = DiscordClient.request

    def counted(self, *args, **kwargs):
        calls["n"] += 1
        return request(self, *args, **kwargs)

    DiscordClient.request = counted
    client.get(url)  # warm-up: imports, templates, connections
    timings: dict[str, list[float]] = {"cold (cache miss: read from Discord)": [], "warm (cached)": []}
    per_view: dict[str, list[int]] = {kind: [] for kind in timings}
    for _ in range(runs):
        cache.clear()
        for kind in timings:
            calls["n"] = 0
            started = time.perf_counter()
            response = client.get(url)
            timings[kind].append(time.perf_counter() - started)
            per_view[kind].append(calls["n"])
            if response.status_code != 200 or f"message {messages - 1}:" not in response.content.decode():
                raise RuntimeError(f"the page did not show the conversation ({response.status_code})")
    table = Table(
        f"Ticket page with a {messages}-message conversation, fake Discord answering in {latency} ms per call "
        f"({runs} runs, load {os.getloadavg()[0]:.1f})",
        ["view", "median ms", "min ms", "max ms", "Discord calls"],
    )
    for kind, values in timings.items():
        table.add(kind, median(values) * 1000, min(values) * 1000, max(values) * 1000, median(per_view[kind]))
    table.print()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bin/bench support_tickets")
    parser.add_argument("--interactions", type=int, default=320, help="interactions per kind")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--messages", type=int, default=2000, help="messages in the ticket that is closed")
    parser.add_argument("--close-runs", type=int, default=2)
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--gunicorn-threads", type=int, default=8)
    parser.add_argument("--part", choices=["all", "interactions", "page"], default="all")
    parser.add_argument("--page-messages", type=int, default=250)
    parser.add_argument("--page-runs", type=int, default=7)
    parser.add_argument("--latency-ms", default="80-150", help="the fake's delay per call on the page: low-high")
    args = parser.parse_args(argv)

    from devtools.fakes.discord.server import FakeDiscord

    low, high = (float(v) / 1000 for v in args.latency_ms.split("-"))
    fake = LaggyDiscord.build(low, high) if args.part == "page" else FakeDiscord()
    os.environ.update(discord_env(fake.url))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.bench"
    from bench.harness import Table, django_on_fresh_database, median, percentile

    database_url = django_on_fresh_database()
    if args.part == "page":
        ticket_id = page_ticket_prepare(fake, messages=args.page_messages)
        fake_process = serve_fake_in_child(fake)
        try:
            page_bench(ticket_id, runs=args.page_runs, messages=args.page_messages, latency=args.latency_ms)
        finally:
            fake_process.terminate()
        return
    from integrations.discord import DiscordClient
    from support.models import Ticket, TicketAttachment, TicketMessage
    from support.workflows import ticket_close_run

    ticket_ids = close_tickets_prepare(fake, runs=args.close_runs, messages=args.messages)
    fake_process = serve_fake_in_child(fake)

    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "ERROR"}
    gunicorn = [
        str(Path(sys.executable).parent / "gunicorn"),
        "config.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={args.gunicorn_workers}",
        "--worker-class=gthread",
        f"--threads={args.gunicorn_threads}",
        "--keep-alive=30",
        "--log-level=warning",
    ]
    server = subprocess.Popen(gunicorn, cwd=ROOT, env=env, start_new_session=True)
    kinds = ["ping", "button (modal)", "modal submit (ticket)"]
    results = {}
    try:
        wait_for_http(port)
        post_signed(port, interaction_bodies("ping", 32, 0), args.concurrency)  # warm-up: imports, connections
        for offset, kind in enumerate(kinds):
            bodies = interaction_bodies(kind, args.interactions, offset * 100000)
            results[kind] = post_signed(port, bodies, args.concurrency)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)

    table = Table(
        f"Discord interactions: {args.interactions} per kind, {args.concurrency} concurrent, gunicorn "
        f"{args.gunicorn_workers}x{args.gunicorn_threads} (load {os.getloadavg()[0]:.1f})",
        ["kind", "2xx", "other", "p50 ms", "p99 ms", "max ms", "p50 / ping"],
    )
    ping_p50 = percentile(results["ping"][0], 50)
    for kind in kinds:
        latencies, statuses, _ = results[kind]
        ok = sum(1 for s in statuses if 200 <= s < 300)
        p50 = percentile(latencies, 50)
        table.add(kind, ok, len(statuses) - ok, p50, percentile(latencies, 99), max(latencies), p50 / ping_p50)
    table.print()
    print(f"tickets created by the submits: {Ticket.objects.filter(status='opening').count()}")

    try:
        client = DiscordClient.from_settings()
        close_table = Table(
            f"Close of a {args.messages}-message ticket against the fake Discord (1 in 50 with an attachment)",
            ["run", "history read s", "close s", "close / read", "messages saved", "attachments"],
        )
        reads, closes = [], []
        for run, ticket_id in enumerate(ticket_ids, start=1):
            channel_id = Ticket.objects.get(pk=ticket_id).discord_channel_id
            started = time.perf_counter()
            client.messages_history(channel_id=channel_id)
            reads.append(time.perf_counter() - started)
            started = time.perf_counter()
            outcome = ticket_close_run(ticket_id=ticket_id)
            closes.append(time.perf_counter() - started)
            if outcome != "closed":
                raise RuntimeError(f"close of ticket {ticket_id} ended {outcome!r}")
            close_table.add(
                str(run),
                reads[-1],
                closes[-1],
                closes[-1] / reads[-1],
                TicketMessage.objects.filter(ticket_id=ticket_id).count(),
                TicketAttachment.objects.filter(message__ticket_id=ticket_id).count(),
            )
        close_table.add("median", median(reads), median(closes), median(closes) / median(reads), "", "")
        close_table.print()
    finally:
        fake_process.terminate()
    if args.part == "all":
        from django.conf import settings

        laggy = LaggyDiscord.build(low, high)
        settings.DISCORD_API_URL = laggy.api_url
        ticket_id = page_ticket_prepare(laggy, messages=args.page_messages)
        laggy_process = serve_fake_in_child(laggy)
        try:
            page_bench(ticket_id, runs=args.page_runs, messages=args.page_messages, latency=args.latency_ms)
        finally:
            laggy_process.terminate()
