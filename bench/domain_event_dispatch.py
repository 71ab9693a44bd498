"""Domain-event dispatch in-process: how fast a burst of `subscription.created` events becomes enrollments.

    bin/bench domain_event_dispatch                    # 2,000 events, one drain, median of 3 runs
    bin/bench domain_event_dispatch --events 1000 --profile 25

Each run seeds `--events` customers with an active subscription and one pending `subscription.created` event each
(what a Stripe burst leaves in the outbox), then runs one `domain_events_drain` in this process until nothing is due.
Every event enrolls its customer in Welcome (its emails queued, the first due now). Reported: events dispatched per
second, SQL queries per event, and (`--profile N`) the N most expensive functions by cumulative time.
This is the part of `bin/bench email_drain --production` that is not sending; it is less noise-sensitive than that.
"""

import argparse
import cProfile
import io
import pstats
import statistics
import time

from bench.harness import Table, django_on_fresh_database


def seed(events: int, run: int) -> None:
    from django.utils import timezone

    from billing.models import Subscription
    from customers.events import SUBSCRIPTION_CREATED
    from customers.models import Customer, DomainEvent

    now = timezone.now()
    customers = Customer.objects.bulk_create(
        [
            Customer(email=f"dispatch{run}-{i}@example.com", name=f"Dispatch Player {i}", stage_changed_at=now)
            for i in range(events)
        ],
        batch_size=2000,
    )
    Subscription.objects.bulk_create(
        [
            Subscription(customer=c, stripe_subscription_id=f"sub_d{c.pk}", product_id="prod_modded", status="active")
            for c in customers
        ],
        batch_size=2000,
    )
    DomainEvent.objects.bulk_create(
        [
            DomainEvent(
                name=SUBSCRIPTION_CREATED,
                key=f"stripe:evt_dispatch_{c.pk}",
                customer=c,
                payload={
                    "subscription_id": f"sub_d{c.pk}",
                    "product_id": "prod_modded",
                    "product_name": "Modded Server 8 GB",
                    "status": "active",
                    "amount": 1999,
                    "currency": "usd",
                    "interval": "month",
                },
                occurred_at=now,
                next_attempt_at=now,
            )
            for c in customers
        ],
        batch_size=2000,
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bin/bench domain_event_dispatch")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, help="print the N top functions by cumulative time")
    args = parser.parse_args(argv)
    django_on_fresh_database()
    from django.db import connection

    from automations.models import EmailQueueItem, Enrollment
    from customers.events import domain_events_drain
    from customers.models import DomainEvent

    rates, queries = [], []
    for run in range(args.runs):
        seed(args.events, run)
        profiler = cProfile.Profile() if args.profile and run == 0 else None
        counted = [0]

        def count(execute, sql, params, many, context, counted=counted):
            counted[0] += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            dispatched = domain_events_drain(woken=False, time_budget=3600)
            if profiler:
                profiler.disable()
            elapsed = time.perf_counter() - started
        assert dispatched == args.events, dispatched
        assert not DomainEvent.objects.filter(dispatched_at__isnull=True).exists()
        rates.append(dispatched / elapsed)
        queries.append(counted[0] / dispatched)
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.profile)
            print(out.getvalue())
    table = Table(
        f"Domain-event dispatch in-process: {args.events} subscription.created events, one drain, {args.runs} runs",
        ["events", "events/s (median)", "events/s (runs)", "queries/event", "enrollments", "queued emails"],
    )
    table.add(
        args.events,
        round(statistics.median(rates), 1),
        " ".join(f"{r:.0f}" for r in rates),
        round(statistics.median(queries), 2),
        Enrollment.objects.count(),
        EmailQueueItem.objects.count(),
    )
    table.print()
