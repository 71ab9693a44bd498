"""The admin dashboard (the admin's front page) at size: p50/p99 per period through the real view.

    bin/bench dashboard                                   # 100,000 customers, 1,000,000 timeline events
    bin/bench dashboard --customers 5000 --events 50000   # a small run

The data is the REST API benchmark's (bench/api.py, imported, not copied), plus what the dashboard reads that it
lacks: stage moves (three per customer on average), payment failures and recoveries, ended subscriptions with
Stripe's cancellation details, some queue trouble and 2,000 tickets. The moves' daily roll-up (customers/rollups.py)
and billing's payment recoveries (billing/recoveries.py) are then computed from them by the rebuild commands'
functions, as the data migrations do. Each scenario is measured twice: through the production path (`config.wsgi`
under gunicorn, 2 sync workers, driven over loopback HTTP with the staff member's session cookie, as bench/api.py
does) and in process with Django's test client (the same middleware, session, permission checks and template,
without the server). Timings are printed, never asserted; the target is under 300 ms.
"""

import argparse
import os
import time

from bench.api import GENERATE, gunicorn_start, timed_over_http
from bench.harness import Table, django_on_fresh_database, median, percentile

DASHBOARD_EXTRA = """
INSERT INTO customers_stagetransition (customer_id, from_stage, to_stage, cause, occurred_at, source_key, forced)
SELECT c.id, 'discovery', 'trial', 'bench', now() - (c.id % 120) * interval '1 day', '', false
FROM customers_customer c WHERE c.id % 3 <> 0
UNION ALL
SELECT c.id, 'trial', 'purchase', 'bench', now() - (c.id % 120) * interval '1 day' + interval '2 days', '', false
FROM customers_customer c WHERE c.id % 3 = 1
UNION ALL
SELECT c.id, 'purchase', 'active', 'bench', now() - (c.id % 120) * interval '1 day' + interval '3 days', '', false
FROM customers_customer c WHERE c.id % 3 = 1
UNION ALL
SELECT c.id, 'active', 'churned', 'bench', now() - (c.id % 365) * interval '1 day', '', false
FROM customers_customer c WHERE c.id % 8 = 6;

-- A failed payment for one customer in 20 (over four months), recovered two days later for half of them.
INSERT INTO customers_timelineevent (customer_id, source, kind, occurred_at, summary, payload, object_type, object_id,
    source_key, recorded_at)
SELECT c.id, 'stripe', 'payment.failed', now() - (c.id % 120) * interval '1 day', 'Payment failed',
    jsonb_build_object('invoice_id', 'in_' || c.id, 'subscription_id', 'sub_' || c.id, 'amount_due', 1999,
        'currency', 'usd', 'next_payment_attempt', to_char(now() + interval '2 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
    'stripe.invoice', 'in_' || c.id, 'bench-failed-' || c.id, now()
FROM customers_customer c WHERE c.id % 20 = 1;
INSERT INTO customers_timelineevent (customer_id, source, kind, occurred_at, summary, payload, object_type, object_id,
    source_key, recorded_at)
SELECT c.id, 'stripe', 'payment.recovered', now() - (c.id % 120) * interval '1 day' + interval '2 days',
    'Payment recovered', jsonb_build_object('invoice_id', 'in_' || c.id), 'stripe.invoice', 'in_' || c.id,
    'bench-recovered-' || c.id, now()
FROM customers_customer c WHERE c.id % 40 = 1;

UPDATE billing_subscription SET ended_at = now() - (id % 120) * interval '1 day',
    cancellation_reason = 'cancellation_requested',
    cancellation_feedback = (ARRAY['too_expensive','missing_features','unused','switched_service','other',
        'too_complex','low_quality',''])[1 + id % 8],
    cancellation_comment = CASE WHEN id % 5 = 0 THEN 'Comment ' || id ELSE '' END
WHERE status = 'canceled';

UPDATE automations_emailqueueitem SET status = 'pending', next_attempt_at = now() - interval '1 hour'
WHERE id % 100 = 0;
UPDATE automations_emailqueueitem SET status = 'failed', last_error = 'bench' WHERE id % 100 = 1;
"""


def _generate(customers: int, events: int) -> None:
    from django.db import connection

    from billing.recoveries import payment_recoveries_rebuild
    from customers.rollups import stage_move_days_rebuild
    from support.models import Ticket, TicketStatus

    with connection.cursor() as cursor:
        cursor.execute(GENERATE, {"customers": customers, "events": events})
        cursor.execute(DASHBOARD_EXTRA)
    # The moves above are written in SQL, past customer_move_stage: their daily roll-up is what
    # `manage.py rebuild_stage_rollup` computes from them (the same rows the service would have kept).
    stage_move_days_rebuild()
    payment_recoveries_rebuild()  # the same for the payment facts: billing's recoveries
    Ticket.objects.bulk_create(
        Ticket(discord_user_id=str(10_000 + n), subject=f"Ticket {n}", status=TicketStatus.CLOSED if n % 10 else "open")
        for n in range(2000)
    )
    with connection.cursor() as cursor:
        # As autovacuum leaves tables in production: index-only scans can skip the heap.
        cursor.execute("VACUUM ANALYZE")


def timed(client, params, repeat):
    samples = []
    for _ in range(3):  # warm-up
        response = client.get("/admin/", params)
        assert response.status_code == 200, (response.status_code, response.content[:300])
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get("/admin/", params)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return samples


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bin/bench dashboard")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=100, help="requests per scenario (p99 needs >= 100)")
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument(
        "--keep-data", action="store_true", help="measure the data a previous run left (no new database)"
    )
    args = parser.parse_args(argv)

    if args.keep_data:
        import django

        django.setup()
    else:
        django_on_fresh_database()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client

    from config.roles import MARKETING, SUPPORT

    started = time.perf_counter()
    if not args.keep_data:
        _generate(args.customers, args.events)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM customers_customer), (SELECT count(*) FROM customers_timelineevent)"
        )
        customers, events = cursor.fetchone()
    verb = "found" if args.keep_data else "generated"
    print(f"{verb} {customers:,} customers, {events:,} timeline events in {time.perf_counter() - started:.0f} s")

    users = get_user_model().objects
    owner, _ = users.get_or_create(username="bench-owner", defaults={"is_staff": True, "is_superuser": True})
    support, _ = users.get_or_create(username="bench-support", defaults={"is_staff": True})
    support.groups.add(Group.objects.get(name=SUPPORT))
    marketing, _ = users.get_or_create(username="bench-marketing", defaults={"is_staff": True})
    marketing.groups.add(Group.objects.get(name=MARKETING))

    from bench.stripe_ingest import free_port, wait_for_http

    table = Table(
        f"Admin dashboard, {customers:,} customers, {events:,} timeline events, {args.repeat} requests each (ms)",
        ["user, period", "served by", "p50", "p99", "queries"],
    )
    scenarios = [(owner, 7), (owner, 30), (owner, 90), (support, 30), (marketing, 30)]
    sessions = {}
    for user in {user for user, _ in scenarios}:
        client = Client()
        client.force_login(user)  # a session row in the database, which the gunicorn workers read too
        sessions[user.pk] = client.cookies["sessionid"].value

    port = free_port()
    connection.close()
    server = gunicorn_start(port, args.gunicorn_workers)
    try:
        wait_for_http(port, "/healthz")
        for user, days in scenarios:
            cookie = {"Cookie": f"sessionid={sessions[user.pk]}"}
            timed_over_http(port, f"/admin/?days={days}", cookie, 3, 1)  # warm-up
            samples = timed_over_http(port, f"/admin/?days={days}", cookie, args.repeat, 1)
            name = f"{user.username.removeprefix('bench-')}, {days} days"
            table.add(name, f"gunicorn {args.gunicorn_workers} sync", median(samples), percentile(samples, 99), "")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)

    for user, days in scenarios:
        client = Client()
        client.force_login(user)
        executed = []
        with connection.execute_wrapper(lambda execute, *args, log=executed: log.append(1) or execute(*args)):
            client.get("/admin/", {"days": days})
        samples = timed(client, {"days": days}, args.repeat)
        table.add(
            f"{user.username.removeprefix('bench-')}, {days} days",
            "in process",
            median(samples),
            percentile(samples, 99),
            len(executed),
        )
    table.print()
    print("Target: under 300 ms. The query count is per request, session and permission lookups included.")
