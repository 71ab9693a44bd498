"""REST API benchmark: p50/p99 of the customer list (filtered, searched), a timeline and analytics, each against a
bare DRF list view of the same table, in the same run.

    bin/bench api                                   # 100,000 customers, 1,000,000 timeline events
    bin/bench api --customers 5000 --events 50000   # a small run
    bin/bench api --regenerate                      # new data even if the bench database holds the right amount

Two ways in, each side by side with the bare view served the same way:

- gunicorn (the production path): `config.wsgi` under gunicorn (2 sync workers by default) with the bench settings,
  driven over HTTP on loopback by `bench.harness.requests_over_connections`.
- in process: Django's test client, no socket, so the numbers are the application's and the database's.

Both go through the whole stack (middleware, API-key authentication, model permissions, throttling, filters,
serializers, cursor pagination). The real endpoint and its bare view are measured in alternating rounds, so a burst
of load from elsewhere on the machine hits both. The data is generated in SQL once and kept in the bench database
for the next run (same sizes). Timings are printed, never asserted; the target is a p99 under 50 ms for a 50-row
page and within 2x of the bare view.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Table, django_on_fresh_database, median, percentile, requests_over_connections

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 4  # alternating rounds of real and bare requests per scenario

GENERATE = """
INSERT INTO customers_customer (email, name, stripe_customer_id, discord_user_id, mautic_contact_id, espocrm_lead_id,
    lifecycle_stage, stage_changed_at, opt_in_confirmed, vip_status, promo_code, discord_invite_link_vip,
    discord_invite_link_basic, metadata, created_at, updated_at)
SELECT 'player' || g || '@example.com', 'Player ' || g, 'cus_' || g, '', '', '',
    (ARRAY['discovery','trial','purchase','onboarding','active','at_risk','churned','win_back'])[1 + g %% 8], now(),
    g %% 2 = 0, g %% 20 = 0, '', '', '', '{}', now() - (g %% 365) * interval '1 day', now()
FROM generate_series(1, %(customers)s) AS g;

INSERT INTO billing_subscription (customer_id, stripe_subscription_id, product_id, product_name, price_id, status,
    amount, currency, interval, interval_count, quantity, cancel_at_period_end, cancellation_reason,
    cancellation_feedback, cancellation_comment, metadata, stripe_created, created_at, updated_at)
SELECT c.id, 'sub_' || c.id, CASE WHEN c.id %% 3 = 0 THEN 'prod_vanilla' ELSE 'prod_modded' END, 'Server', 'price_1',
    (ARRAY['active','past_due','canceled','trialing'])[1 + c.id %% 4], 1999, 'usd', 'month', 1, 1, c.id %% 7 = 0, '',
    '', '', '{}', now(), now(), now()
FROM customers_customer c WHERE c.id %% 2 = 0;

INSERT INTO customers_timelineevent (customer_id, source, kind, occurred_at, summary, payload, object_type, object_id,
    source_key, recorded_at)
SELECT (SELECT min(id) FROM customers_customer) + g %% %(customers)s,
    (ARRAY['stripe','email','support','crm'])[1 + g %% 4],
    (ARRAY['invoice.paid','email.sent','email.opened'])[1 + g %% 3],
    now() - (g %% 1000) * interval '1 hour', 'event ' || g, '{"n": 1}', '', '', 'bench-' || g, now()
FROM generate_series(1, %(events)s) AS g;

-- One sent email per customer over the last 90 days, with the first-outcome times the tracking service keeps.
INSERT INTO automations_enrollment (rule_id, customer_id, scope_key, subscription_id, context, status, exit_reason,
    enrolled_at)
SELECT (SELECT id FROM automations_automationrule ORDER BY id OFFSET (c.id %% 3) LIMIT 1), c.id, 'bench', '', '{}',
    'completed', '', now() - interval '90 days'
FROM customers_customer c;

INSERT INTO automations_emailqueueitem (enrollment_id, step_id, customer_id, recipient, scheduled_at, status, attempts,
    next_attempt_at, last_error, idempotency_key, provider_message_id, created_at, updated_at, sent_at, delivered_at,
    opened_at, clicked_at)
SELECT e.id, (SELECT s.id FROM automations_automationstep s WHERE s.rule_id = e.rule_id ORDER BY s."order" LIMIT 1),
    e.customer_id, 'player' || e.customer_id || '@example.com', t, 'sent', 1, t, '', 'bench:' || e.id,
    'msg-' || e.id, t, t, t, t, CASE WHEN e.id %% 10 < 4 THEN t END, CASE WHEN e.id %% 10 < 1 THEN t END
FROM automations_enrollment e
CROSS JOIN LATERAL (SELECT now() - (e.id %% 90) * interval '1 day' - (e.id %% 1440) * interval '1 minute' AS t) AS x;
ANALYZE;
"""


def timed_in_process(client, path, headers, repeat):
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path, **headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.content[:300])
    return samples


def timed_over_http(port, path, headers, repeat, concurrency):
    latencies, statuses, _ = requests_over_connections(
        port=port,
        path=path,
        bodies=[None] * repeat,
        concurrency=concurrency,
        headers_for=lambda body: headers,
        method="GET",
    )
    bad = {s for s in statuses if s != 200}
    assert not bad, (path, bad)
    return latencies


def side_by_side(measure, real, bare, repeat):
    """Alternating rounds of the endpoint and its bare view, after a warm-up of each."""
    measure(*real, 8)
    measure(*bare, 8)
    ours, base = [], []
    for _ in range(ROUNDS):
        ours += measure(*real, repeat // ROUNDS)
        base += measure(*bare, repeat // ROUNDS)
    return ours, base


def data_present(cursor, customers: int, events: int) -> bool:
    cursor.execute("SELECT count(*) FROM customers_customer")
    (have_customers,) = cursor.fetchone()
    cursor.execute("SELECT count(*) FROM customers_timelineevent")
    (have_events,) = cursor.fetchone()
    return (have_customers, have_events) == (customers, events)


def data_generate(cursor, customers: int, events: int) -> None:
    # Everything that points at a customer goes with it (subscriptions, enrollments, queue items, events).
    cursor.execute("TRUNCATE customers_customer RESTART IDENTITY CASCADE")
    cursor.execute(GENERATE, {"customers": customers, "events": events})


def search_plan(term: str) -> str:
    """The indexes PostgreSQL uses for the customer search (the trigram and id indexes of customers 0005)."""
    import re

    from django.db import connection
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from api.filters import IndexedSearchFilter
    from backoffice.api import CustomerViewSet
    from customers.selectors import customer_list

    request = Request(APIRequestFactory().get("/", {"search": term}))
    queryset = IndexedSearchFilter().filter_queryset(request, customer_list(), CustomerViewSet).order_by("-id")[:51]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    scan = r"(Seq Scan|Index Scan|Bitmap Index Scan|Index Only Scan)(?: Backward)?(?: using| on) (\w+)"
    scans = re.findall(scan, plan)
    return ", ".join(f"{kind} {name}" for kind, name in scans)


def gunicorn_start(port: int, workers: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.api_settings",
        "LOG_LEVEL": "ERROR",
    }
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "config.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={workers}",
        "--worker-class=sync",
        "--log-level=warning",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bin/bench api")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200, help="requests per scenario and variant (p99: >= 100)")
    parser.add_argument("--regenerate", action="store_true", help="new data even if the database holds enough")
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1, help="keep-alive connections driving gunicorn")
    parser.add_argument("--no-in-process", action="store_true", help="only the gunicorn measurement")
    args = parser.parse_args(argv)

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.api_settings"
    django_on_fresh_database(keep=not args.regenerate)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client

    from api.models import ServiceAccountKey
    from bench.stripe_ingest import free_port, wait_for_http
    from config.roles import MARKETING, SERVICE_ACCOUNTS

    started = time.perf_counter()
    with connection.cursor() as cursor:
        if data_present(cursor, args.customers, args.events):
            print(f"reusing the data in the bench database ({args.customers:,} customers, {args.events:,} events)")
        else:
            data_generate(cursor, args.customers, args.events)
            print(f"generated the data in {time.perf_counter() - started:.0f} s")
        cursor.execute("SELECT min(id), count(*) FROM customers_customer")
        first_id, customers = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM customers_timelineevent")
        (events,) = cursor.fetchone()

    account, _ = get_user_model().objects.get_or_create(username="bench-panel")
    account.groups.add(Group.objects.get(name=SERVICE_ACCOUNTS), Group.objects.get(name=MARKETING))
    _, key = ServiceAccountKey.objects.create_key(name="bench", user=account)
    # A customer in the middle of the id range; events are spread evenly, so each has events/customers of them.
    timeline_customer = first_id + customers // 2
    search = f"player{customers // 3}"
    scenarios = [
        ("customers, filtered", "/api/v1/customers/", "stage=active&vip=false&opt_in=true", "customers"),
        ("customers, searched", "/api/v1/customers/", f"search={search}", "customers"),
        (
            "customers, by subscription",
            "/api/v1/customers/",
            "subscription_status=past_due&product=prod_modded",
            "customers",
        ),
        ("timeline of one customer", f"/api/v1/customers/{timeline_customer}/timeline/", "", "timeline"),
        ("analytics, 30 days", "/api/v1/analytics/email/", "", "queue-items"),
    ]
    table = Table(
        f"REST API, {customers:,} customers, {events:,} timeline events, {args.repeat} requests each (ms)",
        ["endpoint", "served by", "p50", "p99", "bare p50", "bare p99", "p99 / bare"],
    )

    def add(name, how, ours, base):
        ratio = percentile(ours, 99) / percentile(base, 99)
        table.add(name, how, median(ours), percentile(ours, 99), median(base), percentile(base, 99), ratio)

    print(f"search plan: {search_plan(search)}")
    port = free_port()
    connection.close()
    server = gunicorn_start(port, args.gunicorn_workers)
    try:
        wait_for_http(port, "/bare/queue-items/")
        auth = {"Authorization": f"Api-Key {key}"}
        for name, url, query, baseline in scenarios:

            def measure(path, headers, repeat):
                return timed_over_http(port, path, headers, repeat, args.concurrency)

            ours, base = side_by_side(measure, (f"{url}?{query}", auth), (f"/bare/{baseline}/", {}), args.repeat)
            add(name, f"gunicorn {args.gunicorn_workers} sync", ours, base)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)

    if not args.no_in_process:
        client = Client()
        auth = {"HTTP_AUTHORIZATION": f"Api-Key {key}"}
        for name, url, query, baseline in scenarios:
            ours, base = side_by_side(
                lambda path, headers, repeat: timed_in_process(client, path, headers, repeat),
                (f"{url}?{query}", auth),
                (f"/bare/{baseline}/", {}),
                args.repeat,
            )
            add(name, "in process", ours, base)
    table.print()
    print(
        "Pages are 50 rows (the analytics answer is one document). Target: p99 < 50 ms and within 2x of bare. "
        f"gunicorn is driven over {args.concurrency} connection(s) on loopback."
    )
