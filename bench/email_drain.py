"""Drain benchmark: N due emails through the fake Resend under its rate limit, two workers, one killed mid-run.

    bin/bench email_drain                       # 10,000 emails, 5 requests/s, 30 ms latency, 2 workers, 1 SIGKILL
    bin/bench email_drain --items 2000 --no-kill
    bin/bench email_drain --production          # the production path: qcluster processes, a Stripe-like burst

The provider's ceiling is rate x batch size (5 requests/s x 100 emails = 500 emails/s); the target is 80% of it.
Workers are real processes (`manage.py process_email_queue --until-done`) on the bench database; the fake runs in
this process and counts what it delivered, so duplicates are counted at the provider, where they would hurt.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Table, django_on_fresh_database

ROOT = Path(__file__).resolve().parent.parent


def seed(items: int) -> None:
    """`items` customers, each enrolled in the welcome sequence with its first email due now."""
    from django.utils import timezone

    from automations.models import AutomationStep, EmailQueueItem, Enrollment
    from customers.models import Customer

    step = AutomationStep.objects.select_related("rule").get(rule__name="Welcome", order=1)
    now = timezone.now()
    customers = Customer.objects.bulk_create(
        [Customer(email=f"bench{i}@example.com", name=f"Bench Player {i}", stage_changed_at=now) for i in range(items)],
        batch_size=2000,
    )
    enrollments = Enrollment.objects.bulk_create(
        [
            Enrollment(
                rule=step.rule,
                customer=c,
                scope_key=f"subscription:sub_{c.pk}",
                subscription_id=f"sub_{c.pk}",
                context={"subscription_id": f"sub_{c.pk}", "product_name": "Modded Server 8 GB", "amount": 1999},
                enrolled_at=now,
            )
            for c in customers
        ],
        batch_size=2000,
    )
    EmailQueueItem.objects.bulk_create(
        [
            EmailQueueItem(
                enrollment=e,
                step=step,
                customer_id=e.customer_id,
                recipient=e.customer.email,
                scheduled_at=now,
                next_attempt_at=now,
                idempotency_key=f"email:enrollment-{e.pk}:step-{step.pk}",
            )
            for e in enrollments
        ],
        batch_size=2000,
    )


def not_final() -> int:
    from automations.models import FINAL_QUEUE_STATUSES, EmailQueueItem

    return EmailQueueItem.objects.exclude(status__in=FINAL_QUEUE_STATUSES).count()


def run(args, *, kill: bool, pacing: bool) -> list:
    from django.db import connection

    from automations.models import EmailQueueItem, QueueStatus
    from devtools.fakes.resend import FakeResend

    seed(args.items)
    connection.close()
    with FakeResend() as fake:
        fake.rate_limit(per_second=args.rate)
        fake.latency = args.latency
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.bench",
            "AUTOMATIONS_EMAIL_TRANSPORT": "resend",
            "RESEND_API_KEY": "re_bench_key",
            "RESEND_API_URL": fake.url + "/",
            "AUTOMATIONS_LEASE_SECONDS": str(args.lease),
            "AUTOMATIONS_BATCH_SIZE": str(args.batch_size),
            # The operator sets the team's limit; without it workers find the limit by 429s only.
            "AUTOMATIONS_RESEND_REQUESTS_PER_SECOND": "0" if not pacing else str(args.rate),
            "LOG_LEVEL": "ERROR",
        }
        command = [sys.executable, "manage.py", "process_email_queue", "--until-done", "--seconds", "600"]

        def spawn():
            return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=sys.stderr)

        started = time.monotonic()
        workers = [spawn() for _ in range(args.workers)]
        killed_at = None
        finished_at = None
        while True:
            if kill and killed_at is None and len(fake.delivered) >= args.items * args.kill_at:
                # SIGKILL: no cleanup, no chance to record the batch it has in flight.
                workers[0].send_signal(signal.SIGKILL)
                workers[0].wait()
                killed_at = time.monotonic() - started
                workers[0] = spawn()
            if finished_at is None and not_final() == 0:
                finished_at = time.monotonic() - started
            if all(w.poll() is not None for w in workers):
                break
            if time.monotonic() - started > args.timeout:
                for w in workers:
                    w.kill()
                break
            time.sleep(0.05)
        elapsed = finished_at or (time.monotonic() - started)
        ceiling = args.rate * args.batch_size
        rate = args.items / elapsed
        return [
            ("SIGKILL + restart" if kill else "no crash") + (", paced" if pacing else ", 429s only"),
            args.items,
            args.workers,
            f"{killed_at:.1f}" if killed_at else "-",
            round(elapsed, 2),
            round(rate, 1),
            f"{rate / ceiling:.0%}",
            fake.rate_limited_count,
            fake.idempotent_repeats,
            sum(n - 1 for n in fake.duplicates().values()),
            not_final(),
            EmailQueueItem.objects.filter(status=QueueStatus.SENT).count(),
            # The machine is shared: a busy neighbour takes CPU from the workers, so say how busy it was.
            f"{os.getloadavg()[0]:.1f}",
        ]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bin/bench email_drain")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=5, help="Fake Resend requests per second (429 beyond).")
    parser.add_argument("--latency", type=float, default=0.03)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lease", type=int, default=5, help="Seconds before a dead worker's batch is re-sent.")
    parser.add_argument("--kill-at", type=float, default=0.3, help="Kill worker 1 when this share is delivered.")
    parser.add_argument("--no-kill", action="store_true")
    parser.add_argument("--baseline", action="store_true", help="Also run without the crash, and without pacing.")
    parser.add_argument("--runs", type=int, default=1, help="Runs per variant; medians are printed too.")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--production",
        action="store_true",
        help="Run the production path instead: `manage.py qcluster` processes on the ORM broker, a burst of "
        "subscription.created domain events, one cluster SIGKILLed and restarted (bench/email_drain_production.py).",
    )
    parser.add_argument("--clusters", type=int, default=3, help="--production: qcluster processes.")
    parser.add_argument("--q-workers", type=int, default=2, help="--production: workers per qcluster process.")
    args = parser.parse_args(argv)
    if args.production:
        from bench.email_drain_production import run_production

        run_production(args)
        return

    table = Table(
        f"Email drain: fake Resend at {args.rate} req/s, {args.latency * 1000:.0f} ms latency, "
        f"batches of {args.batch_size} (ceiling {args.rate * args.batch_size} emails/s)",
        [
            "variant",
            "emails",
            "workers",
            "killed at s",
            "seconds",
            "emails/s",
            "of ceiling",
            "429s",
            "key replays",
            "duplicates",
            "not final",
            "sent",
            "load 1m",
        ],
    )
    variants = [(not args.no_kill, True)]
    if args.baseline:
        variants = [(False, False), (False, True), *([(True, True)] if not args.no_kill else [])]
    medians = Table(
        f"Email drain, median of {args.runs} run(s) per variant",
        ["variant", "emails/s", "of ceiling", "429s (all runs)", "duplicates (all runs)", "not final (worst)"],
    )
    first = True
    for kill, pacing in variants:
        rows = []
        for _ in range(args.runs):
            if not first:
                from django.db import connections

                connections.close_all()  # the database is about to be dropped and created again
            first = False
            django_on_fresh_database()
            rows.append(run(args, kill=kill, pacing=pacing))
            table.add(*rows[-1])
        rate = statistics.median(row[5] for row in rows)
        medians.add(
            rows[0][0],
            rate,
            f"{rate / (args.rate * args.batch_size):.0%}",
            sum(row[7] for row in rows),
            sum(row[9] for row in rows),
            max(row[10] for row in rows),
        )
    table.print()
    if args.runs > 1:
        medians.print()
