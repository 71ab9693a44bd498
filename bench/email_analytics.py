"""Analytics benchmark: the admin's email analytics over 1,000,000 tracking events on 100,000 sent emails.

    bin/bench email_analytics                        # 100,000 emails, 10 events each, spread over 90 days
    bin/bench email_analytics --items 10000 --events-per-item 10

Data is generated in SQL (generate_series) the way the tracking service leaves it: every event row, plus each
email's first delivery/open/click/... time on the queue item. The page's query reads the queue items only; for
comparison the table also times the same numbers counted straight from the event table (the design not taken).
"""

import argparse
import statistics
import time
from datetime import timedelta

from bench.harness import Table, django_on_fresh_database, percentile

GENERATE = """
INSERT INTO customers_customer (email, name, stripe_customer_id, discord_user_id, mautic_contact_id, espocrm_lead_id,
    lifecycle_stage, stage_changed_at, opt_in_confirmed, vip_status, promo_code, discord_invite_link_vip,
    discord_invite_link_basic, metadata, created_at, updated_at)
SELECT 'player' || g || '@example.com', 'Player ' || g, '', '', '', '', 'active', now(), g %% 2 = 0, false, '', '', '',
    '{}', now(), now()
FROM generate_series(1, %(items)s) AS g;

INSERT INTO automations_enrollment (rule_id, customer_id, scope_key, subscription_id, context, status, exit_reason,
    enrolled_at)
SELECT (SELECT id FROM automations_automationrule ORDER BY id OFFSET (c.id %% 3) LIMIT 1), c.id, 'bench', '', '{}',
    'completed', '', now() - interval '90 days'
FROM customers_customer c;

INSERT INTO automations_emailqueueitem (enrollment_id, step_id, customer_id, recipient, scheduled_at, status, attempts,
    next_attempt_at, last_error, idempotency_key, provider_message_id, created_at, updated_at, sent_at)
SELECT e.id, (SELECT s.id FROM automations_automationstep s WHERE s.rule_id = e.rule_id ORDER BY s."order"
        OFFSET (e.id %% (SELECT count(*) FROM automations_automationstep s2 WHERE s2.rule_id = e.rule_id)) LIMIT 1),
    e.customer_id, 'player' || e.customer_id || '@example.com', t, 'sent', 1, t, '', 'bench:' || e.id,
    'msg-' || e.id, t, t, t
FROM automations_enrollment e
CROSS JOIN LATERAL (
    SELECT now() - (e.id %% 90) * interval '1 day' - (e.id %% 1440) * interval '1 minute' AS t
) AS times;

-- Per email: 1 delivery, then opens, clicks and the odd bounce/complaint/deferral, depending on the email's id.
INSERT INTO automations_emailevent (queue_item_id, type, occurred_at, url, user_agent, provider_event_id,
    provider_message_id, recipient, machine_open, payload, received_at)
SELECT q.id,
    CASE WHEN k = 0 THEN 'delivered'
         WHEN k <= 4 AND q.id %% 10 < 4 THEN 'opened'
         WHEN k <= 6 AND q.id %% 10 < 2 THEN 'clicked'
         WHEN k = 7 AND q.id %% 100 = 0 THEN 'bounced'
         WHEN k = 8 AND q.id %% 1000 = 0 THEN 'complained'
         ELSE 'deferred' END,
    q.sent_at + (k * 17) * interval '1 minute' + (CASE WHEN k = 1 AND q.id %% 3 = 0 THEN interval '2 seconds'
        ELSE interval '0' END),
    CASE WHEN k BETWEEN 5 AND 6 THEN 'https://panel.modready.example' ELSE '' END, '', 'svix-' || q.id || '-' || k,
    q.provider_message_id, q.recipient, k = 1 AND q.id %% 3 = 0, '{}', now()
FROM automations_emailqueueitem q CROSS JOIN generate_series(0, %(per_item)s - 1) AS k;

-- What the tracking service keeps on each email: the first time of each outcome.
UPDATE automations_emailqueueitem q SET
    delivered_at = f.delivered, opened_at = f.opened, human_opened_at = f.human, clicked_at = f.clicked,
    bounced_at = f.bounced, complained_at = f.complained
FROM (
    SELECT queue_item_id,
        min(occurred_at) FILTER (WHERE type = 'delivered') AS delivered,
        min(occurred_at) FILTER (WHERE type = 'opened') AS opened,
        min(occurred_at) FILTER (WHERE type = 'opened' AND NOT machine_open) AS human,
        min(occurred_at) FILTER (WHERE type = 'clicked') AS clicked,
        min(occurred_at) FILTER (WHERE type = 'bounced') AS bounced,
        min(occurred_at) FILTER (WHERE type = 'complained') AS complained
    FROM automations_emailevent GROUP BY queue_item_id
) AS f WHERE f.queue_item_id = q.id;
UPDATE automations_emailqueueitem SET unsubscribed_at = sent_at + interval '1 hour' WHERE id %% 500 = 0;
ANALYZE;
"""

FROM_EVENTS = """
SELECT q.step_id, count(DISTINCT q.id),
    count(DISTINCT e.queue_item_id) FILTER (WHERE e.type = 'delivered'),
    count(DISTINCT e.queue_item_id) FILTER (WHERE e.type = 'opened'),
    count(DISTINCT e.queue_item_id) FILTER (WHERE e.type = 'opened' AND NOT e.machine_open),
    count(DISTINCT e.queue_item_id) FILTER (WHERE e.type = 'clicked'),
    count(DISTINCT e.queue_item_id) FILTER (WHERE e.type = 'bounced'),
    count(DISTINCT e.queue_item_id) FILTER (WHERE e.type = 'complained')
FROM automations_emailqueueitem q LEFT JOIN automations_emailevent e ON e.queue_item_id = q.id
WHERE q.sent_at >= %s AND q.sent_at < %s AND q.status = 'sent'
GROUP BY q.step_id
"""


def timed(function, repeat: int) -> list[float]:
    function()  # warm the caches once, like a page someone opens twice
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bin/bench email_analytics")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--events-per-item", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)

    django_on_fresh_database()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from automations.models import EmailEvent, EmailQueueItem
    from automations.selectors import email_analytics

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(GENERATE, {"items": args.items, "per_item": args.events_per_item})
    generated_in = time.perf_counter() - started
    events, items = EmailEvent.objects.count(), EmailQueueItem.objects.count()

    user = get_user_model().objects.create_superuser("bench", "bench@modready.example", "bench-password-1")
    client = Client()
    client.force_login(user)
    now = timezone.now()

    def page(days):
        since = (now - timedelta(days=days - 1)).date().isoformat()
        response = client.get("/admin/automations/automationrule/analytics/", {"since": since})
        assert response.status_code == 200, response.status_code

    def from_events(days):
        with connection.cursor() as cursor:
            cursor.execute(FROM_EVENTS, [now - timedelta(days=days), now])
            cursor.fetchall()

    table = Table(
        f"Email analytics: {events:,} events on {items:,} sent emails (generated in {generated_in:.0f} s)",
        ["what", "range", "p50 ms", "p90 ms", "max ms", "vs page query"],
    )
    for days in (30, 90):
        query = timed(lambda d=days: email_analytics(since=now - timedelta(days=d), until=now), args.repeat)
        admin_page = timed(lambda d=days: page(d), args.repeat)
        naive = timed(lambda d=days: from_events(d), max(3, args.repeat // 3))
        base = statistics.median(query)
        for name, samples in (
            ("analytics query (selector)", query),
            ("admin analytics page (HTTP)", admin_page),
            ("same counts from the event table", naive),
        ):
            table.add(
                name,
                f"{days} days",
                statistics.median(samples),
                percentile(samples, 90),
                max(samples),
                f"{statistics.median(samples) / base:.1f}x",
            )
    table.print()
