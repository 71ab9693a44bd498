"""Stripe webhook ingest under load: our endpoint against dj-stripe's stock view and a bare ceiling, in one run.

    bin/bench stripe_ingest [--events 2000] [--concurrency 16] [--latency 0.15] [--paced-rate 200] [--skip-stock]

The app runs under gunicorn on PostgreSQL (the bench database), a django-q2 cluster processes our events, and a fake
Stripe (devtools/fakes/stripe/server.py, in its own process) answers every API call after `--latency` seconds. Signed
events
(5% duplicates, some pairs out of order) are POSTed over `--concurrency` keep-alive connections to:

- ours: POST /api/webhooks/stripe (verify, store, ack; processing in the task queue),
- stock: dj-stripe's ProcessWebhookView (processes inside the request, re-fetching from Stripe),
- bare: a view that only verifies the signature and inserts one row (the ceiling).

Each variant is first sent as fast as the connections go (closed loop: the rate, and latencies that include the
queueing at saturation); ours and bare are also sent paced at `--paced-rate` requests/s (open loop, below
saturation: the acknowledgement time itself). Printed: acknowledgement p50/p99 and rate per run, ratios, and for ours
the time until every event is processed, lost events (never processed) and doubled ones (processed more than once,
or a fact recorded twice). `--cluster-after-ack` starts the task cluster only once everything is acknowledged.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import requests_over_connections

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_bench_" + "b" * 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_fake_in_child(fake) -> multiprocessing.Process:
    """Serve an already populated FakeStripe from a forked process, so its threads do not share our GIL."""
    from django.db import connections

    connections.close_all()
    process = multiprocessing.get_context("fork").Process(target=fake._server.serve_forever, daemon=True)
    process.start()
    return process


def wait_for_http(port: int, path: str = "/healthz", timeout: float = 60) -> None:
    """Until the server answers at all: /healthz says 503 on a bench database with no scheduler running, and that
    answer still proves the web process is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port}")


def build_events(fake, *, events: int, seed: int) -> list[dict]:
    """Subscriptions in the fake and their events, interleaved; some adjacent pairs swapped, 5% sent twice."""
    from devtools.fakes.stripe.objects import stripe_event

    rng = random.Random(seed)
    product = fake.add_product(name="ModReady Server")
    price = fake.add_price(product=product)
    per_subscription = []
    for n in range(max(1, round(events * 0.95 / 4))):
        world = fake.add_subscription(email=f"bench{seed}-{n}@example.com", product=product, price=price)
        sub = world.subscription
        invoice = fake.add_invoice(subscription=sub, status="paid", attempt_count=1, amount_paid=1499)
        if n % 4 == 0:
            fake.update(sub["id"], cancel_at_period_end=True, cancel_at=sub["items"]["data"][0]["current_period_end"])
        per_subscription.append(
            [
                stripe_event("customer.subscription.created", sub),
                stripe_event("invoice.paid", invoice),
                stripe_event("customer.subscription.updated", fake.get(sub["id"])),
                stripe_event("customer.updated", world.customer),
            ]
        )
    ordered = [event for group in zip(*per_subscription, strict=True) for event in group]
    for i in range(0, len(ordered) - 1, 10):  # every tenth pair arrives newest first
        ordered[i], ordered[i + 1] = ordered[i + 1], ordered[i]
    unique = len(ordered)
    for _ in range(max(0, events - unique)):
        ordered.insert(rng.randrange(len(ordered)), rng.choice(ordered[:unique]))
    return ordered[:events] if len(ordered) > events else ordered


def post_all(
    port: int, path: str, events: list[dict], concurrency: int, rate: float | None = None
) -> tuple[list[float], list[int], float]:
    """POST every event, signed just before sending (closed loop, or paced at `rate` per second)."""
    from devtools.fakes.stripe.objects import signature_header

    return requests_over_connections(
        port=port,
        path=path,
        bodies=[json.dumps(event).encode() for event in events],
        concurrency=concurrency,
        headers_for=lambda body: {"Stripe-Signature": signature_header(body, SECRET)},
        rate=rate,
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bin/bench stripe_ingest")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.15, help="seconds the fake Stripe takes per answer")
    parser.add_argument("--gunicorn-workers", type=int, default=3)
    parser.add_argument("--gunicorn-threads", type=int, default=8)
    parser.add_argument("--q-workers", type=int, default=16, help="django-q2 workers processing our events")
    parser.add_argument("--cluster-nice", type=int, default=10, help="nice level of the task cluster")
    parser.add_argument("--paced-rate", type=float, default=200, help="requests/s of the paced run (0: none)")
    parser.add_argument("--process-timeout", type=float, default=900)
    parser.add_argument(
        "--cluster-after-ack",
        action="store_true",
        help="start the task cluster only after every event is acknowledged (isolates the ack path)",
    )
    parser.add_argument("--skip-stock", action="store_true", help="leave out dj-stripe's synchronous view")
    args = parser.parse_args(argv)

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.stripe_settings"
    from bench.harness import Table, django_on_fresh_database, median, percentile

    database_url = django_on_fresh_database()
    from django.db import connection

    from billing.models import StripeEventProcessing
    from billing.stripe_webhook.endpoint import webhook_endpoint_configure
    from customers.models import DomainEvent, TimelineEvent
    from devtools.fakes.stripe.server import FakeStripe

    endpoint, _ = webhook_endpoint_configure(secret=SECRET, url="http://127.0.0.1/api/webhooks/stripe")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_bare_delivery (id bigserial PRIMARY KEY, body text NOT NULL)")

    fake = FakeStripe()
    fake.latency = args.latency
    warmup = build_events(fake, events=48, seed=4)
    variants = {"ours": build_events(fake, events=args.events, seed=1)}
    if not args.skip_stock:
        variants["stock"] = build_events(fake, events=args.events, seed=2)
    variants["bare"] = build_events(fake, events=args.events, seed=3)
    paced = build_events(fake, events=min(args.events, 1000), seed=5) if args.paced_rate else []
    # dj-stripe looks up the account of the API key once; do it here rather than in 16 racing workers.
    import stripe
    from djstripe.models import Account
    from djstripe.settings import djstripe_settings

    from core.schedules import schedules_install

    schedules_install()  # includes the every-minute retry of failed events
    fake_process = serve_fake_in_child(fake)
    stripe.api_base = fake.url
    Account.get_or_retrieve_for_api_key(djstripe_settings.STRIPE_SECRET_KEY)

    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.stripe_settings",
        "DATABASE_URL": database_url,
        "STRIPE_API_HOST": fake.url,
        "Q_WORKERS": str(args.q_workers),
        "LOG_LEVEL": "ERROR",
    }
    python = sys.executable
    gunicorn = [
        str(Path(python).parent / "gunicorn"),
        "config.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={args.gunicorn_workers}",
        "--worker-class=gthread",
        f"--threads={args.gunicorn_threads}",
        "--keep-alive=30",
        "--log-level=warning",
    ]
    server = subprocess.Popen(gunicorn, cwd=ROOT, env=env, start_new_session=True)
    # The task cluster runs at a lower CPU priority than the web workers (as a deployment on one box would): the
    # acknowledgement must not queue behind the processing of earlier events.
    cluster_command = ["nice", "-n", str(args.cluster_nice), python, "manage.py", "qcluster"]
    cluster = (
        None
        if args.cluster_after_ack
        else subprocess.Popen(
            [python, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    try:
        wait_for_http(port)
        # Warm-up outside the clock: every gunicorn worker imports and connects on its first requests.
        post_all(port, "/bench/bare", variants["bare"][:32], args.concurrency)
        post_all(port, "/api/webhooks/stripe", warmup, args.concurrency)

        results = {}
        ours = variants["ours"]
        unique_ids = {event["id"] for event in ours}
        latencies, statuses, wall = post_all(port, "/api/webhooks/stripe", ours, args.concurrency)
        started = time.monotonic() - wall
        if cluster is None:
            cluster = subprocess.Popen(
                cluster_command,
                cwd=ROOT,
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + args.process_timeout
        while time.monotonic() < deadline:
            done = StripeEventProcessing.objects.filter(event_id__in=unique_ids, status="processed").count()
            if done == len(unique_ids):
                break
            time.sleep(0.5)
        all_processed = time.monotonic() - started
        results["ours"] = (latencies, statuses, wall)
        processed = StripeEventProcessing.objects.filter(event_id__in=unique_ids, status="processed")
        lost = len(unique_ids) - processed.count()
        reprocessed = processed.filter(attempts__gt=1).count()
        created_facts = TimelineEvent.objects.filter(kind="subscription.created")
        doubled_facts = created_facts.count() - created_facts.values("object_id").distinct().count()
        failed = StripeEventProcessing.objects.exclude(status="processed").count()

        if paced:
            results[f"ours, paced {args.paced_rate:.0f}/s"] = post_all(
                port, "/api/webhooks/stripe", paced, args.concurrency, rate=args.paced_rate
            )
            results[f"bare, paced {args.paced_rate:.0f}/s"] = post_all(
                port, "/bench/bare", variants["bare"][: len(paced)], args.concurrency, rate=args.paced_rate
            )
        if "stock" in variants:
            results["stock"] = post_all(
                port, f"/bench/djstripe/{endpoint.djstripe_uuid}", variants["stock"], args.concurrency
            )
        results["bare"] = post_all(port, "/bench/bare", variants["bare"], args.concurrency)
    finally:
        running = [process for process in (server, cluster) if process is not None]
        for process in running:
            os.killpg(process.pid, signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        fake_process.terminate()

    table = Table(
        f"Stripe webhook ingest: {args.events} events ({len(unique_ids)} unique), {args.concurrency} connections, "
        f"fake Stripe {args.latency * 1000:.0f} ms",
        ["variant", "2xx", "errors", "ack p50 ms", "ack p99 ms", "rate /s", "wall s"],
    )
    rates = {}
    for name, (latencies, statuses, wall) in results.items():
        ok = sum(1 for status in statuses if 200 <= status < 300)
        rates[name] = len(statuses) / wall
        table.add(name, ok, len(statuses) - ok, median(latencies), percentile(latencies, 99), rates[name], wall)
    table.print()

    summary = Table("Ours: processing and ratios", ["measure", "value", "target"])
    summary.add("time until every event processed (s)", all_processed, "")
    summary.add("lost (never processed)", lost, "0")
    summary.add("processed more than once", reprocessed, "0")
    summary.add("facts recorded twice", doubled_facts, "0")
    summary.add("not processed at the end (failed/pending)", failed, "0")
    summary.add("domain events published", DomainEvent.objects.count(), "")
    summary.add("ack p99 (ms), as fast as possible", percentile(results["ours"][0], 99), "<= 25")
    if paced:
        paced_p99 = percentile(results[f"ours, paced {args.paced_rate:.0f}/s"][0], 99)
        summary.add(f"ack p99 (ms), paced at {args.paced_rate:.0f}/s", paced_p99, "<= 25")
    summary.add("rate / bare ceiling", rates["ours"] / rates["bare"], ">= 0.40")
    if "stock" in rates:
        summary.add("rate / dj-stripe stock view", rates["ours"] / rates["stock"], ">= 10")
    summary.print()
