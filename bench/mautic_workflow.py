"""Workflow 1 under load: the Mautic webhook's answer time, and invites per second with Discord's rate limits on.

    bin/bench mautic_workflow [--deliveries 800] [--concurrency 16] [--contacts 1000] [--workers 4]
                              [--discord-limit 10]

Part 1 (answer time). The app runs under gunicorn on the bench database; `--concurrency` threads POST signed,
real-shape Mautic deliveries (one contact each, all different) to /api/webhooks/mautic over keep-alive connections.
No task cluster runs, so what is timed is Mautic's wait: verify, store, enqueue, answer. Baseline: /healthz (one
query) under the same concurrency. Printed: p50/p99 and rate, and the ratio to the baseline.

Part 2 (throughput). `--contacts` opted-in contacts in a fake Mautic, a fake Discord whose invite route allows
`--discord-limit` calls per second (X-RateLimit-* headers, 429 beyond), a fake EspoCRM; one run per contact executed
by `--workers` threads (as django-q2 workers would). Printed: contacts per second, invites made (must equal
contacts: one each), Discord 429s answered, for the limit on and off (the baseline).
"""

import argparse
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.harness import Table, django_on_fresh_database, percentile, requests_over_connections
from bench.stripe_ingest import free_port, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-mautic-webhook-secret"


def post_all(port: int, path: str, bodies: list[bytes], concurrency: int, signed: bool) -> tuple[list, list, float]:
    """Signed webhook POSTs, or (`signed` False) plain GETs of the same count as the baseline."""
    from devtools.fakes.mautic import sign

    if not signed:
        return requests_over_connections(
            port=port, path=path, bodies=[None] * len(bodies), concurrency=concurrency, method="GET", timeout=60
        )
    return requests_over_connections(
        port=port,
        path=path,
        bodies=bodies,
        concurrency=concurrency,
        headers_for=lambda body: {"Webhook-Signature": sign(body, SECRET)},
        timeout=60,
    )


def answer_time(args, database_url: str) -> None:
    from devtools.fakes.mautic import FakeMautic

    fake = FakeMautic()  # only to build real-shape bodies; never started
    ids = [fake.add_contact(email=f"player{i}@example.com", opt_in_confirmed=True) for i in range(args.deliveries)]
    bodies = [fake.webhook_body([contact_id]) for contact_id in ids]
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.bench",
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "ERROR",
        "MAUTIC_ENABLED": "1",
        "MAUTIC_BASE_URL": "http://127.0.0.1:9",
        "MAUTIC_USERNAME": "bench",
        "MAUTIC_PASSWORD": "bench",
        "MAUTIC_WEBHOOK_SECRET": SECRET,
        "MAUTIC_EMAIL_INVITE_VIP": "1",
        "MAUTIC_EMAIL_INVITE_BASIC": "2",
        "MAUTIC_EMAIL_COUPON": "3",
    }
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
    try:
        wait_for_http(port)
        post_all(port, "/healthz", [b""] * 64, args.concurrency, signed=False)  # warm-up
        post_all(port, "/api/webhooks/mautic", bodies[:32], args.concurrency, signed=True)
        table = Table(
            f"Mautic webhook answer time, {args.concurrency} concurrent connections",
            ["endpoint", "requests", "p50 ms", "p99 ms", "rate/s", "non-2xx", "p50 vs baseline"],
        )
        base_lat, base_status, base_secs = post_all(port, "/healthz", [b""] * len(bodies), args.concurrency, False)
        lat, status, secs = post_all(port, "/api/webhooks/mautic", bodies[32:], args.concurrency, signed=True)
        base_p50 = percentile(base_lat, 50)
        table.add(
            "/healthz (baseline)",
            len(base_lat),
            base_p50,
            percentile(base_lat, 99),
            len(base_lat) / base_secs,
            sum(1 for s in base_status if not 200 <= s < 300),
            "1.00x",
        )
        table.add(
            "/api/webhooks/mautic",
            len(lat),
            percentile(lat, 50),
            percentile(lat, 99),
            len(lat) / secs,
            sum(1 for s in status if not 200 <= s < 300),
            f"{percentile(lat, 50) / base_p50:.2f}x",
        )
        table.print()
    finally:
        server.terminate()
        server.wait(timeout=30)


def throughput(args) -> None:
    import logging

    from django.conf import settings
    from django.db import connection

    from devtools.fakes import espocrm as espocrm_fake
    from devtools.fakes import mautic as mautic_fake
    from devtools.fakes.discord import interactions as discord_fake
    from devtools.fakes.discord.server import FakeDiscord
    from integrations import runs
    from integrations.models import WorkflowRun

    logging.getLogger("integrations").setLevel(logging.ERROR)  # each 429 is counted in the table, not logged
    table = Table(
        f"Workflow 1 over {args.contacts} contacts, {args.workers} workers",
        ["Discord limit", "contacts/s", "seconds", "invites", "emails", "leads", "Discord 429s", "failed runs"],
    )
    for limit in (None, args.discord_limit):
        WorkflowRun.objects.all().delete()
        with (
            mautic_fake.FakeMautic() as mautic,
            FakeDiscord() as discord,
            espocrm_fake.FakeEspoCrm() as espocrm,
        ):
            settings.MAUTIC_ENABLED = settings.ESPOCRM_ENABLED = settings.DISCORD_INVITES_ENABLED = True
            settings.MAUTIC_BASE_URL, settings.ESPOCRM_BASE_URL = mautic.url, espocrm.url
            settings.MAUTIC_USERNAME, settings.MAUTIC_PASSWORD = mautic_fake.USERNAME, mautic_fake.PASSWORD
            settings.MAUTIC_WEBHOOK_SECRET = SECRET
            settings.MAUTIC_EMAIL_INVITE_VIP = settings.MAUTIC_EMAIL_INVITE_BASIC = settings.MAUTIC_EMAIL_COUPON = "1"
            settings.ESPOCRM_API_KEY = espocrm_fake.API_KEY
            settings.DISCORD_API_URL, settings.DISCORD_BOT_TOKEN = discord.api_url, discord_fake.BOT_TOKEN
            settings.DISCORD_APPLICATION_ID = discord_fake.APPLICATION_ID
            settings.DISCORD_INVITE_CHANNEL_ID = "1600000000000000001"
            discord.invite_limit = args.contacts + 10
            if limit:
                discord.limit_buckets(limit=limit, per=1.0)
            enqueue = runs.workflow_run_enqueue
            runs.workflow_run_enqueue = lambda **kwargs: None  # the workers below take the runs
            try:
                run_ids = []
                for i in range(args.contacts):
                    contact_id = mautic.add_contact(email=f"p{limit}-{i}@example.com", opt_in_confirmed=True)
                    fields = {"email": f"p{limit}-{i}@example.com", "opt_in_confirmed": "1", "vip_status": "0"}
                    run, _ = runs.workflow_run_create(
                        kind="contact_invite",
                        key=f"bench:{limit}:{contact_id}",
                        subject=f"mautic-contact:{contact_id}",
                        input={"contact_id": contact_id, "fields": fields},
                    )
                    run_ids.append(run.pk)
            finally:
                runs.workflow_run_enqueue = enqueue
            queue = iter(run_ids)
            lock = threading.Lock()

            def worker(queue=queue, lock=lock) -> None:
                try:
                    while True:
                        with lock:
                            run_id = next(queue, None)
                        if run_id is None:
                            return
                        runs.run_execute(run_id=run_id)
                finally:
                    connection.close()

            started = time.perf_counter()
            with ThreadPoolExecutor(args.workers) as pool:
                for _ in range(args.workers):
                    pool.submit(worker)
            seconds = time.perf_counter() - started
            failed = WorkflowRun.objects.exclude(status="succeeded").count()
            table.add(
                f"{limit}/s" if limit else "off (baseline)",
                args.contacts / seconds,
                seconds,
                len(discord.invites),
                len(mautic.sent_emails),
                len(espocrm.leads),
                discord.bucket_429s,
                failed,
            )
    table.print()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bin/bench mautic_workflow")
    parser.add_argument("--deliveries", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--gunicorn-threads", type=int, default=8)
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--discord-limit", type=int, default=10, help="invite calls per second the fake allows")
    args = parser.parse_args(argv)
    database_url = django_on_fresh_database()
    answer_time(args, database_url)
    throughput(args)
