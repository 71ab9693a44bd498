"""REST API benchmark: p50/p99 of the customer list (filtered, searched), a timeline and analytics, each against a
bare DRF list view of the same table, in the same run.

    bin/bench api                                   # 100,000 customers, 1,000,000 timeline events
    bin/bench api --customers 5000 --events 50000   # a small run

Requests go through the whole Django stack in process (middleware, API-key authentication, model permissions,
throttling, filters, serializers, cursor pagination) with Django's test client: no socket, so the numbers are the
application's and the database's. Data is generated in SQL. Timings are printed, never asserted; the target is a
p99 under 50 ms for a 50-row page and within 2x of the bare view.
"""

import argparse
import time

from bench.harness import Table, django_on_fresh_database, median, percentile

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


def timed(client, url, params, headers, repeat):
    samples = []
    for _ in range(3):  # warm-up: connection, caches, the key's last-used write
        response = client.get(url, params, **headers)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url, params, **headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return samples


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bin/bench api")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200, help="requests per scenario (p99 needs >= 100)")
    args = parser.parse_args(argv)

    django_on_fresh_database()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client

    from api.models import ServiceAccountKey
    from api.throttling import PrincipalRateThrottle
    from config.roles import MARKETING, SERVICE_ACCOUNTS

    settings.ROOT_URLCONF = "bench.api_urls"
    settings.ALLOWED_HOSTS = ["*"]
    PrincipalRateThrottle.THROTTLE_RATES = {"principal": "1000000/min"}  # the bench measures, it does not throttle

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(GENERATE, {"customers": args.customers, "events": args.events})
        cursor.execute("SELECT min(id), count(*) FROM customers_customer")
        first_id, customers = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM customers_timelineevent")
        (events,) = cursor.fetchone()
    print(f"generated {customers:,} customers, {events:,} timeline events in {time.perf_counter() - started:.0f} s")

    account = get_user_model().objects.create_user(username="bench-panel")
    account.groups.add(Group.objects.get(name=SERVICE_ACCOUNTS), Group.objects.get(name=MARKETING))
    _, key = ServiceAccountKey.objects.create_key(name="bench", user=account)
    auth = {"HTTP_AUTHORIZATION": f"Api-Key {key}"}
    client = Client()
    # A customer in the middle of the id range; events are spread evenly, so each has events/customers of them.
    timeline_customer = first_id + customers // 2
    search = f"player{customers // 3}"

    scenarios = [
        (
            "customers, filtered",
            "/api/v1/customers/",
            {"stage": "active", "vip": "false", "opt_in": "true"},
            "customers",
        ),
        ("customers, searched", "/api/v1/customers/", {"search": search}, "customers"),
        (
            "customers, by subscription",
            "/api/v1/customers/",
            {"subscription_status": "past_due", "product": "prod_modded"},
            "customers",
        ),
        ("timeline of one customer", f"/api/v1/customers/{timeline_customer}/timeline/", {}, "timeline"),
        ("analytics, 30 days", "/api/v1/analytics/email/", {}, "queue-items"),
    ]
    bare = {}
    table = Table(
        f"REST API, {customers:,} customers, {events:,} timeline events, {args.repeat} requests each (ms)",
        ["endpoint", "p50", "p99", "bare p50", "bare p99", "p99 / bare"],
    )
    for name, url, params, baseline in scenarios:
        if baseline not in bare:
            bare[baseline] = timed(client, f"/bare/{baseline}/", {}, {}, args.repeat)
        samples = timed(client, url, params, auth, args.repeat)
        base = bare[baseline]
        table.add(
            name,
            median(samples),
            percentile(samples, 99),
            median(base),
            percentile(base, 99),
            percentile(samples, 99) / percentile(base, 99),
        )
    table.print()
    print("Pages are 50 rows (the analytics answer is one document). Target: p99 < 50 ms and within 2x of bare.")
