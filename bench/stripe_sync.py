"""The daily Stripe sync at scale: ours against a naive dj-stripe loop, in one run.

    bin/bench stripe_sync [--subscriptions 2000] [--latency 0.05]      (the issue's full size: --subscriptions 20000)

A fake Stripe (devtools/fakes/stripe/server.py, in this process) holds `--subscriptions` subscriptions, 100 per page,
each with its own customer, answering every call after `--latency` seconds; most subscriptions are old (imported
quietly), 5% are new. Each variant runs twice on the same data: cold (empty database) and warm (nothing changed
since, the daily case).

- naive: `djstripe.models.Subscription.api_list(status="all", limit=100)` + `sync_from_stripe_data` for each
  (dj-stripe's mirror only, no CRM records).
- ours: `billing.sync.stripe_sync_run()` (dj-stripe's mirror and the CRM records, timeline, stages).

Printed: wall time, Stripe calls per subscription, database queries per subscription (overall and the per-page
range, which shows whether the cost per subscription stays constant), and the speed-up of ours over the naive loop.
"""

import argparse
import time

TABLES_TO_EMPTY = [
    "djstripe_subscriptionitem",
    "djstripe_subscription",
    "djstripe_price",
    "djstripe_product",
    "djstripe_customer",
    "billing_subscription",
    "customers_timelineevent",
    "customers_stagetransition",
    "customers_domainevent",
    "customers_customer",
    "django_q_ormq",
]


class QueryCounter:
    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def populate(fake, *, subscriptions: int) -> None:
    now = int(time.time())
    products = [fake.add_product(name=f"ModReady Server {size}") for size in ("S", "M", "L")]
    products.append(fake.add_product(name="Merch", modready=False))
    prices = [fake.add_price(product=product, unit_amount=999 + 500 * n) for n, product in enumerate(products)]
    for n in range(subscriptions):
        recent = n % 20 == 0
        created = now - (3600 if recent else 86400 * (30 + n % 700))
        status = "active" if n % 10 else ("canceled" if n % 20 else "past_due")
        index = n % len(prices)
        extra = {"ended_at": created + 86400 * 20, "canceled_at": created + 86400 * 20} if status == "canceled" else {}
        fake.add_subscription(
            email=f"sync{n}@example.com",
            product=products[index],
            price=prices[index],
            status=status,
            created=created,
            **extra,
        )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bin/bench stripe_sync")
    parser.add_argument("--subscriptions", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the fake Stripe takes per answer")
    args = parser.parse_args(argv)

    from bench.harness import Table, django_on_fresh_database

    django_on_fresh_database()
    import stripe
    from django.db import connection
    from djstripe import models as djstripe_models
    from djstripe.settings import djstripe_settings

    from billing.models import Subscription
    from billing.sync import stripe_sync_run
    from devtools.fakes.stripe.server import FakeStripe

    fake = FakeStripe().start()
    stripe.api_base = fake.url
    populate(fake, subscriptions=args.subscriptions)
    djstripe_models.Account.get_or_retrieve_for_api_key(djstripe_settings.STRIPE_SECRET_KEY)
    fake.latency = args.latency
    n = args.subscriptions

    def naive() -> list[int]:
        per_page, counter, seen = [], QueryCounter(), 0
        with connection.execute_wrapper(counter):
            for data in djstripe_models.Subscription.api_list(status="all", limit=100):
                djstripe_models.Subscription.sync_from_stripe_data(data)
                seen += 1
                if seen % 100 == 0:
                    per_page.append(counter.count)
        return [counter.count, *per_page]

    def ours() -> list[int]:
        per_page, counter = [], QueryCounter()
        with connection.execute_wrapper(counter):
            summary = stripe_sync_run(progress=lambda s: per_page.append(counter.count))
        assert summary.errors == 0, summary
        return [counter.count, *per_page]

    def measure(fn):
        fake.requests.clear()
        started = time.perf_counter()
        counts = fn()
        wall = time.perf_counter() - started
        total, pages = counts[0], counts[1:]
        page_costs = [b - a for a, b in zip([0, *pages], pages, strict=False)]
        return wall, len(fake.requests), total, page_costs

    results = {}
    results["naive, cold"] = measure(naive)
    results["naive, warm"] = measure(naive)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(TABLES_TO_EMPTY)} CASCADE")
    results["ours, cold"] = measure(ours)
    crm_subscriptions = Subscription.objects.count()
    results["ours, warm"] = measure(ours)

    table = Table(
        f"Stripe sync: {n:,} subscriptions in {(n + 99) // 100} pages, fake Stripe {args.latency * 1000:.0f} ms",
        ["variant", "wall s", "subs/s", "calls", "calls/sub", "queries/sub", "queries/sub per page (min-max)"],
    )
    for name, (wall, calls, queries, page_costs) in results.items():
        spread = f"{min(page_costs) / 100:.1f}-{max(page_costs) / 100:.1f}" if page_costs else "-"
        table.add(name, wall, n / wall, calls, calls / n, queries / n, spread)
    table.print()

    ratios = Table("Ours against the naive loop", ["measure", "value", "target"])
    ratios.add("speed-up, cold (naive wall / ours wall)", results["naive, cold"][0] / results["ours, cold"][0], ">= 3")
    ratios.add("speed-up, warm (naive wall / ours wall)", results["naive, warm"][0] / results["ours, warm"][0], ">= 3")
    ratios.add("ours: Stripe calls per subscription, cold", results["ours, cold"][1] / n, "<= 1.05")
    ratios.add("CRM subscriptions written (ModReady only)", crm_subscriptions, "")
    ratios.print()
    fake.stop()
