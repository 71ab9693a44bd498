"""How fast customers are written through customers.services, against a bare insert in the same run.

    bin/bench customers_upsert [--customers 2000]

Rows: the service path (customer_upsert for a new customer, again for an existing one, a timeline event, and a
stage move) and the baseline (Customer.objects.create), each timed per call; the table shows medians, p99 and the
ratio of each median to the baseline's.
"""

import argparse
import time


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bin/bench customers_upsert")
    parser.add_argument("--customers", type=int, default=2000)
    args = parser.parse_args(argv)

    from bench.harness import Table, django_on_fresh_database, median, percentile

    django_on_fresh_database()
    from django.db import connection

    from customers import services
    from customers.models import Customer

    def timed(fn, n: int) -> list[float]:
        samples = []
        for i in range(n):
            started = time.perf_counter()
            fn(i)
            samples.append((time.perf_counter() - started) * 1000)
        return samples

    n = args.customers
    results = {
        "baseline: Customer.objects.create": timed(lambda i: Customer.objects.create(email=f"base{i}@example.com"), n),
        "customer_upsert (new)": timed(
            lambda i: services.customer_upsert(email=f"c{i}@example.com", stripe_customer_id=f"cus_{i}"), n
        ),
        "customer_upsert (existing, email change)": timed(
            lambda i: services.customer_upsert(email=f"changed{i}@example.com", stripe_customer_id=f"cus_{i}"), n
        ),
    }
    customers = list(Customer.objects.filter(stripe_customer_id__startswith="cus_").order_by("pk"))
    results["timeline_event_record"] = timed(
        lambda i: services.timeline_event_record(
            customer=customers[i], source="stripe", source_key=f"evt_{i}", kind="subscription.created"
        ),
        n,
    )
    results["timeline_event_record (duplicate)"] = timed(
        lambda i: services.timeline_event_record(
            customer=customers[i], source="stripe", source_key=f"evt_{i}", kind="subscription.created"
        ),
        n,
    )
    results["customer_move_stage"] = timed(
        lambda i: services.customer_move_stage(customer=customers[i], to_stage="purchase", cause="bench"), n
    )

    baseline = median(results["baseline: Customer.objects.create"])
    table = Table(
        f"Customer writes, {n:,} calls each, PostgreSQL {connection.pg_version // 10000} (ms per call)",
        ["operation", "median ms", "p99 ms", "x baseline"],
    )
    for name, samples in results.items():
        table.add(name, median(samples), percentile(samples, 99), median(samples) / baseline)
    table.print()
