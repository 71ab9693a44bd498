"""`bin/bench broadcast`: a 100,000-recipient send on the production path, at the provider's ceiling, under faults.

    bin/bench broadcast                                  # 100,000 emails at 2 and at 5 requests/s
    bin/bench broadcast --items 10000 --rates 5          # smaller, one rate
    bin/bench broadcast --items 10000 --no-kill --clean  # no SIGKILLs, no late answers or 500s

The send is a real broadcast (marketing/broadcasts.py): `--items` opted-in customers, a segment of everyone and a
draft broadcast are written first; once the clusters are up, "Send now" is pressed, and the broadcast's own task in
the clusters queues its recipients and wakes the drain. (`--via queue` writes the queue items directly instead and
wakes the drain once: the send pipeline alone.) Real `manage.py qcluster` processes (django-q2, ORM broker,
config.settings.bench, default pipeline settings) send to the fake Resend, which runs in this process at `rate`
requests/s x 100 emails (429 beyond), answers 5% of calls 16 s late (after handling them: past the 15 s read
timeout, the outcome is unknown) and refuses 5% with a 500. One cluster's whole process group is SIGKILLed every
`--kill-every` seconds, round robin, and started again.

Reported per rate: first-send delay ("Send now", or the wake-up, to the first email at the fake), the drain rate
(distinct emails / the span from first to last send) as a share of the ceiling, the longest gap between two sends,
duplicates (emails delivered more than once, by their X-Entity-Ref-ID) and lost (never delivered when the run
ends), not sent (queue items not recorded as sent yet when the run stops, 2 s after the last distinct email reached
the fake: batches delivered whose answer came late, whose retry under the same key records them), peak memory (RSS
of all cluster processes together, and of the largest one), the SIGKILLs, 429s, late answers and 500s, and the
1-minute load average at the start and at the end (the machine is shared). Each rate runs in a fresh database, in its
own child process.
"""

import argparse
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.harness import Table

ROOT = Path(__file__).resolve().parent.parent


def _say(message: str) -> None:
    print(f"[broadcast] {message}", file=sys.stderr, flush=True)


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


class MemoryWatch:
    """Peak resident memory of the cluster processes (every process in their process groups), sampled twice a second."""

    def __init__(self, groups) -> None:
        self.groups = groups  # a callable: the current process group ids
        self.peak_total = self.peak_one = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            groups, total, largest = set(self.groups()), 0, 0
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                with contextlib.suppress(OSError, ValueError, IndexError, StopIteration):
                    if os.getpgid(int(entry.name)) not in groups:
                        continue
                    rss = next(line for line in (entry / "status").read_text().splitlines() if line.startswith("VmRSS"))
                    kib = int(rss.split()[1])
                    total += kib
                    largest = max(largest, kib)
            self.peak_total, self.peak_one = max(self.peak_total, total), max(self.peak_one, largest)


def seed_broadcast(items: int) -> int:
    """`items` opted-in customers, a topic they are all on, a segment of everyone and a marketing broadcast to it (a
    draft): what Marketing would have before pressing "Send now". Returns the broadcast's id."""
    from django.utils import timezone

    from automations.models import EmailTemplate
    from customers.models import Customer, Topic
    from marketing.broadcasts import broadcast_create
    from marketing.models import Segment

    now = timezone.now()
    run = f"{now:%Y%m%d-%H%M%S}"  # its own names: a reused database (--reuse-db) keeps the last run's templates
    Customer.objects.bulk_create(
        [
            Customer(
                email=f"bench{i}@example.com", name=f"Bench Player {i}", stage_changed_at=now, opt_in_confirmed=True
            )
            for i in range(items)
        ],
        batch_size=2000,
    )
    topic, _ = Topic.objects.get_or_create(name="Product news", defaults={"subscribed_by_default": True})
    template = EmailTemplate.objects.create(
        name=f"Bench announcement {run}",
        category="marketing",
        subject="Frankfurt is live, {{ customer.first_name }}",
        html_body="<p>Hi {{ customer.first_name }}, our new Frankfurt location is live.</p>",
        text_body="Hi {{ customer.first_name }}, our new Frankfurt location is live.",
    )
    segment = Segment.objects.create(name=f"Everyone (bench {run})")
    broadcast = broadcast_create(name=f"Bench broadcast {run}", topic=topic, segment=segment, template=template)
    return broadcast.pk


def _broadcast_send_now(broadcast_id: int) -> float:
    """Marketing presses "Send now": the recipients are queued by a task in the clusters, which wakes the drain."""
    from marketing.broadcasts import broadcast_send_now
    from marketing.models import Broadcast

    pressed_at = time.monotonic()
    broadcast_send_now(broadcast=Broadcast.objects.get(pk=broadcast_id), actor=None)
    return pressed_at


def _make_due_and_wake() -> float:
    from django.utils import timezone

    from automations.drain_control import queue_process_enqueue
    from automations.models import EmailQueueItem

    EmailQueueItem.objects.update(next_attempt_at=timezone.now())
    woken_at = time.monotonic()
    queue_process_enqueue()
    return woken_at


def run_one(args) -> dict:
    """One rate, in this process: fresh database, seed, clusters, send, measure."""
    from bench.harness import django_on_fresh_database

    _say(f"{args.items} emails at {args.rate} req/s: {'reused' if args.reuse_db else 'fresh'} database, migrating")
    django_on_fresh_database(keep=args.reuse_db)
    if args.reuse_db:  # a database migrated before (minutes on a busy machine): emptied of the last run's rows
        from django.db import connection as setup_connection

        with setup_connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE customers_customer, automations_emailbatch, automations_drainlease, automations_queuewake,"
                " automations_providercallslot, django_q_ormq, django_q_task CASCADE"
            )
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone
    from django_q.models import OrmQ
    from django_q.tasks import async_task

    from automations.models import EmailQueueItem, QueueStatus
    from bench.email_drain import seed
    from devtools.fakes.resend import FakeResend

    seeded_at = time.monotonic()
    if args.via == "broadcast":
        broadcast_id = seed_broadcast(args.items)
    else:
        seed(args.items)
        # Not due until the clusters are up: the first-send delay is measured from the wake-up.
        EmailQueueItem.objects.update(next_attempt_at=timezone.now() + timedelta(days=1))
    _say(f"seeded in {time.monotonic() - seeded_at:.0f} s")
    load_start = _load()
    with FakeResend() as fake:
        fake.keep_bodies = False
        fake.rate_limit(per_second=args.rate)
        fake.latency = args.latency
        if not args.clean:
            fake.random_faults(late=args.late, late_seconds=args.late_seconds, errors=args.errors, seed=args.rate)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.bench",
            "AUTOMATIONS_EMAIL_TRANSPORT": "resend",
            "RESEND_API_KEY": "re_bench_key",
            "RESEND_API_URL": fake.url + "/",
            "AUTOMATIONS_RESEND_REQUESTS_PER_SECOND": str(args.rate),
            "Q_WORKERS": str(args.q_workers),
            "LOG_LEVEL": "ERROR",
        }

        def spawn():
            return subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: SIGKILL takes pusher, workers and monitor together
            )

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        clusters = [spawn() for _ in range(args.clusters)]
        memory = MemoryWatch(lambda: [cluster.pid for cluster in clusters])
        memory.thread.start()
        kills = 0
        try:
            async_task("math.floor", 1.0)  # the clusters are up once a worker has taken this
            started = time.monotonic()
            while OrmQ.objects.exists() and time.monotonic() - started < 120:
                time.sleep(0.1)
            if args.via == "broadcast":
                _say(f"{args.clusters} clusters up after {time.monotonic() - started:.1f} s; sending the broadcast")
                woken_at = _broadcast_send_now(broadcast_id)
            else:
                _say(f"{args.clusters} clusters up after {time.monotonic() - started:.1f} s; waking the drain")
                woken_at = _make_due_and_wake()
            deadline = woken_at + args.timeout
            next_kill = None
            while time.monotonic() < deadline:
                if fake.delivered and next_kill is None:
                    next_kill = time.monotonic() + args.kill_every
                if not args.no_kill and next_kill is not None and time.monotonic() >= next_kill:
                    index = kills % len(clusters)
                    os.killpg(clusters[index].pid, signal.SIGKILL)
                    clusters[index].wait()
                    clusters[index] = spawn()
                    kills += 1
                    next_kill += args.kill_every
                    _say(f"cluster {index + 1} SIGKILLed and restarted ({len(fake.delivered)} delivered)")
                if len(fake.delivered) >= args.items and len({e.ref for e in fake.delivered}) >= args.items:
                    break
                time.sleep(0.05)
            time.sleep(2.0)  # anything still in flight shows up as a duplicate
        finally:
            memory.stop.set()
            for cluster in clusters:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(cluster.pid, signal.SIGTERM)
            for cluster in clusters:
                try:
                    cluster.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(cluster.pid, signal.SIGKILL)
                    cluster.wait()
        sends = sorted(email.delivered_at for email in fake.delivered)
        refs = {email.ref for email in fake.delivered}
        duplicates = sum(n - 1 for n in fake.duplicates().values())
        counters = {
            "429s": fake.rate_limited_count,
            "late": fake.late_answers,
            "500s": fake.random_errors,
            "calls": len(fake.requests),
        }
    connection.close()
    not_sent = EmailQueueItem.objects.exclude(status=QueueStatus.SENT).count()
    span = sends[-1] - sends[0] if len(sends) > 1 else float("nan")
    rate = len(refs) / span if span == span and span > 0 else float("nan")
    ceiling = args.rate * 100
    return {
        "items": args.items,
        "rate": args.rate,
        "first_send": sends[0] - woken_at if sends else float("nan"),
        "last_send": sends[-1] - woken_at if sends else float("nan"),
        "emails_per_s": rate,
        "of_ceiling": rate / ceiling,
        "longest_gap": max((b - a for a, b in itertools.pairwise(sends)), default=float("nan")),
        "duplicates": duplicates,
        "lost": args.items - len(refs),
        "not_sent": not_sent,
        "kills": kills,
        "peak_mb": memory.peak_total / 1024,
        "peak_one_mb": memory.peak_one / 1024,
        "load_start": load_start,
        "load_end": _load(),
        **counters,
    }


def _table(rows: list[dict], args) -> Table:
    faults = f"{args.late:.0%} late answers ({args.late_seconds:.0f} s), {args.errors:.0%} 500s"
    faults = "no faults" if args.clean else faults
    kill = "no SIGKILL" if args.no_kill else f"one cluster SIGKILLed every {args.kill_every:.0f} s"
    table = Table(
        f"Broadcast send, production path ({args.label}): {args.clusters} qcluster x {args.q_workers} workers (ORM "
        f"broker), fake Resend at <rate> x 100 emails per call, {faults}, {kill}",
        [
            "emails",
            "req/s",
            "ceiling/s",
            "first send s",
            "last send s",
            "emails/s",
            "of ceiling",
            "longest gap s",
            "duplicates",
            "lost",
            "not sent",
            "kills",
            "429s",
            "late",
            "500s",
            "peak MB all",
            "peak MB one",
            "load 1m start",
            "load 1m end",
        ],
    )
    for row in rows:
        table.add(
            row["items"],
            row["rate"],
            row["rate"] * 100,
            round(row["first_send"], 1),
            round(row["last_send"], 1),
            round(row["emails_per_s"], 1),
            f"{row['of_ceiling']:.0%}" if row["of_ceiling"] == row["of_ceiling"] else "-",
            round(row["longest_gap"], 1),
            row["duplicates"],
            row["lost"],
            row["not_sent"],
            row["kills"],
            row["429s"],
            row["late"],
            row["500s"],
            round(row["peak_mb"]),
            round(row["peak_one_mb"]),
            row["load_start"],
            row["load_end"],
        )
    return table


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bin/bench broadcast", description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rates", default="2,5", help="Fake Resend requests per second, one run each.")
    parser.add_argument("--rate", type=int, help=argparse.SUPPRESS)  # a child's one rate
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--q-workers", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.03)
    parser.add_argument("--late", type=float, default=0.05)
    parser.add_argument("--late-seconds", type=float, default=16.0)
    parser.add_argument("--errors", type=float, default=0.05)
    parser.add_argument("--clean", action="store_true", help="No late answers and no 500s.")
    parser.add_argument("--kill-every", type=float, default=30.0)
    parser.add_argument("--no-kill", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--label", default="this branch")
    parser.add_argument(
        "--via",
        choices=["broadcast", "queue"],
        default="broadcast",
        help="broadcast: a real broadcast, its recipients queued by its task after 'Send now' (the default); "
        "queue: the queue items written directly, then one wake-up (the pipeline alone, as before broadcasts).",
    )
    parser.add_argument("--reuse-db", action="store_true", help="Keep a migrated bench database; empty its rows.")
    args = parser.parse_args(argv)
    if args.rate is not None:
        result = run_one(args)
        Path(args.result_file).write_text(json.dumps(result))
        return
    rows = []
    for rate in [int(r) for r in args.rates.split(",")]:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            child = [*argv, "--rate", str(rate), "--result-file", out.name]
            subprocess.run([sys.executable, "-m", "bench", "broadcast", *child], cwd=ROOT, check=True)
            rows.append(json.loads(Path(out.name).read_text()))
        _table(rows, args).print()  # after each rate, so a long run shows its first figures early
