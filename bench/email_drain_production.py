"""`bin/bench email_drain --production`: the email pipeline where it runs in production.

Real `manage.py qcluster` processes (django-q2 on the ORM broker, settings config.settings.bench) do everything: a
burst of `subscription.created` domain events is published the way billing publishes them for a Stripe burst (one
transaction per event, dispatch enqueued on commit); their dispatch enrolls each customer in the Welcome sequence,
whose first email is due at once, and the coalesced drain sends it to the fake Resend (rate ceiling, latency).
When `--kill-at` of the emails are delivered, one whole qcluster process group is SIGKILLed and started again.

Reported: time from the burst to the first email at the fake; the drain rate (emails / seconds from the first to
the last send) as a share of the fake's ceiling (rate x batch size), next to the rate at which dispatch enrolled
customers (emails cannot leave faster than they are queued); the peak number of tasks on the broker (django_q OrmQ
rows, which hold a task from enqueue until it is done), and of those the peak of email-drain tasks; duplicates
delivered and emails lost (Welcome emails not delivered when the run ends: a cluster SIGKILLed with tasks it had
pulled leaves them to django-q2's retry, Q_RETRY = 180 s, so keep --timeout above that).
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.harness import Table, django_on_fresh_database

ROOT = Path(__file__).resolve().parent.parent
DRAIN_TASK = "automations.tasks.email_queue_process_task"


def _seed_customers(count: int) -> list[int]:
    from django.utils import timezone

    from customers.models import Customer

    now = timezone.now()
    customers = Customer.objects.bulk_create(
        [Customer(email=f"prod{i}@example.com", name=f"Prod Player {i}", stage_changed_at=now) for i in range(count)],
        batch_size=2000,
    )
    return [c.pk for c in customers]


def _publish_burst(customer_ids: list[int]) -> None:
    """What billing does for each `customer.subscription.created` webhook: publish in its own transaction."""
    from django.db import transaction

    from customers.events import SUBSCRIPTION_CREATED, domain_event_publish
    from customers.models import Customer

    for customer in Customer.objects.filter(pk__in=customer_ids).order_by("pk"):
        with transaction.atomic():
            domain_event_publish(
                name=SUBSCRIPTION_CREATED,
                key=f"stripe:evt_bench_{customer.pk}",
                customer=customer,
                payload={
                    "subscription_id": f"sub_bench_{customer.pk}",
                    "product_id": "prod_modded",
                    "product_name": "Modded Server 8 GB",
                    "price_id": "price_1",
                    "status": "active",
                    "amount": 1999,
                    "currency": "usd",
                    "interval": "month",
                    "trial_end": None,
                },
            )


class BrokerWatch:
    """Samples the broker's queue length (OrmQ rows) and, less often, how many of them are email drains."""

    def __init__(self) -> None:
        self.peak = 0
        self.peak_drains = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from django.db import connection
        from django_q.models import OrmQ
        from django_q.signing import SignedPackage

        tick = 0
        try:
            while not self.stop.is_set():
                self.peak = max(self.peak, OrmQ.objects.count())
                if tick % 5 == 0:
                    drains = 0
                    for payload in OrmQ.objects.values_list("payload", flat=True)[:5000]:
                        with contextlib.suppress(Exception):  # a row half-written or unreadable: not a drain
                            drains += SignedPackage.loads(payload).get("func") == DRAIN_TASK
                    self.peak_drains = max(self.peak_drains, drains)
                tick += 1
                time.sleep(0.1)
        finally:
            connection.close()


def _say(message: str) -> None:
    print(f"[email_drain --production] {message}", file=sys.stderr, flush=True)


def run_production(args) -> None:
    _say("fresh database, migrating")
    django_on_fresh_database()
    from django.db import connection
    from django.db.models import Count, Max, Min
    from django_q.models import OrmQ
    from django_q.tasks import async_task

    from automations.models import EmailQueueItem, Enrollment, QueueStatus
    from devtools.fakes.resend import FakeResend

    items = args.items
    customer_ids = _seed_customers(items)
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
            "AUTOMATIONS_RESEND_REQUESTS_PER_SECOND": str(args.rate),
            "Q_WORKERS": str(args.q_workers),
            "LOG_LEVEL": "ERROR",
        }

        def spawn():
            # Its own process group: SIGKILL takes the cluster's pusher, workers and monitor down together.
            return subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

        # A benchmark stopped from outside (timeout, Ctrl-C) must not leave clusters running: they would keep
        # polling the bench database and join the next run.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        clusters = [spawn() for _ in range(args.clusters)]
        _say(f"{args.clusters} qcluster processes started; waiting for them to take tasks")
        try:
            # Wait until the clusters take tasks: a no-op task leaves the broker once a worker is polling.
            async_task("math.floor", 1.0)
            started = time.monotonic()
            while OrmQ.objects.exists() and time.monotonic() - started < 120:
                time.sleep(0.1)
            startup = time.monotonic() - started
            _say(f"clusters up after {startup:.1f} s; publishing {items} subscription.created events")
            watch = BrokerWatch()
            watch.thread.start()

            burst_at = time.monotonic()
            published_at: list[float] = []

            def publish():
                # In its own thread (and connection), as webhooks arrive while workers send: the kill below must be
                # able to land in the middle of the drain, not after the burst.
                try:
                    _publish_burst(customer_ids)
                    published_at.append(time.monotonic() - burst_at)
                finally:
                    connection.close()

            publisher = threading.Thread(target=publish, daemon=True)
            publisher.start()
            first_send = killed_at = None
            deadline = burst_at + args.timeout
            while time.monotonic() < deadline:
                delivered = len(fake.delivered)
                now = time.monotonic()
                if first_send is None and delivered:
                    first_send = fake.delivered[0].delivered_at - burst_at
                if killed_at is None and not args.no_kill and delivered >= items * args.kill_at:
                    os.killpg(clusters[0].pid, signal.SIGKILL)
                    clusters[0].wait()
                    killed_at = now - burst_at
                    clusters[0] = spawn()
                    _say(f"cluster 1 SIGKILLed and restarted at {killed_at:.1f} s ({delivered} delivered)")
                if len({e.ref for e in fake.delivered}) >= items:
                    break
                time.sleep(0.05)
            publisher.join()
            published = published_at[0] if published_at else float("nan")
            _say(f"published in {published:.1f} s")
            time.sleep(1.0)  # anything still in flight shows up as a duplicate
        finally:
            for cluster in clusters:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(cluster.pid, signal.SIGTERM)
            for cluster in clusters:
                try:
                    cluster.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(cluster.pid, signal.SIGKILL)
                    cluster.wait()
        watch.stop.set()
        watch.thread.join()

        sends = sorted(e.delivered_at for e in fake.delivered)
        welcome_refs = {e.ref for e in fake.delivered}
        span = (sends[-1] - sends[0]) if len(sends) > 1 else float("nan")
        rate = len(welcome_refs) / span if span and span == span else float("nan")
        ceiling = args.rate * args.batch_size
        connection.close()
        due_items = EmailQueueItem.objects.filter(step__order=1)
        # Emails can leave no faster than dispatch enrolls customers: show that rate next to the drain's.
        enrolled = Enrollment.objects.aggregate(first=Min("enrolled_at"), last=Max("enrolled_at"), n=Count("id"))
        enrolled_span = (enrolled["last"] - enrolled["first"]).total_seconds() if enrolled["n"] > 1 else float("nan")
        enroll_rate = enrolled["n"] / enrolled_span if enrolled_span else float("nan")
        lost = items - len(welcome_refs)
        table = Table(
            f"Email drain, production path: {args.clusters} qcluster x {args.q_workers} workers (ORM broker), "
            f"fake Resend at {args.rate} req/s x {args.batch_size} = {ceiling} emails/s, "
            f"{args.latency * 1000:.0f} ms latency",
            [
                "emails",
                "startup s",
                "publish s",
                "first send s",
                "killed at s",
                "last send s",
                "enrolled/s",
                "send span s",
                "emails/s",
                "of ceiling",
                "peak queue",
                "peak drains queued",
                "duplicates",
                "lost",
                "queued items",
                "429s",
                "load 1m",
            ],
        )
        table.add(
            items,
            round(startup, 1),
            round(published, 1),
            round(first_send, 2) if first_send is not None else "-",
            round(killed_at, 1) if killed_at else "-",
            round(sends[-1] - burst_at, 1) if sends else "-",
            round(enroll_rate, 1),
            round(span, 2),
            round(rate, 1),
            f"{rate / ceiling:.0%}" if rate == rate else "-",
            watch.peak,
            watch.peak_drains,
            sum(n - 1 for n in fake.duplicates().values()),
            lost,
            due_items.exclude(status=QueueStatus.SENT).count(),
            fake.rate_limited_count,
            f"{os.getloadavg()[0]:.1f}",
        )
        table.print()
