from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from automations.models import Suppression, SuppressionReason
from billing.models import Subscription
from customers.lifecycle import Stage
from customers.models import StageTransition, TimelineSource
from tests.api.conftest import ids, query_counts
from tests.customers.factories import CustomerFactory, TimelineEventFactory
from tests.support.factories import TicketFactory

pytestmark = pytest.mark.django_db


def subscription(customer, n=1, **fields):
    return Subscription.objects.create(
        customer=customer,
        stripe_subscription_id=f"sub_{customer.pk}_{n}",
        product_id=fields.pop("product_id", "prod_modded"),
        product_name="Modded 8 GB",
        status=fields.pop("status", "active"),
        amount=1999,
        currency="usd",
        interval="month",
        **fields,
    )


def test_list_newest_first_with_cursor_pages(key_client):
    customers = CustomerFactory.create_batch(5)
    first = key_client.get("/api/v1/customers/", {"page_size": 2})
    assert ids(first) == [customers[4].pk, customers[3].pk]
    second = key_client.get(first.json()["next"])
    assert ids(second) == [customers[2].pk, customers[1].pk]
    assert key_client.get("/api/v1/customers/", {"ordering": "id", "page_size": 2}).json()["results"][0]["id"] == (
        customers[0].pk
    )


def test_filters(key_client):
    vip = CustomerFactory(vip_status=True, lifecycle_stage=Stage.ACTIVE, opt_in_confirmed=True)
    at_risk = CustomerFactory(lifecycle_stage=Stage.AT_RISK)
    plain = CustomerFactory()
    subscription(vip, product_id="prod_vanilla")
    subscription(at_risk, status="past_due")
    subscription(at_risk, n=2, status="canceled")

    assert ids(key_client.get("/api/v1/customers/", {"vip": "true"})) == [vip.pk]
    assert ids(key_client.get("/api/v1/customers/", {"opt_in": "false"})) == [plain.pk, at_risk.pk]
    assert ids(key_client.get("/api/v1/customers/", {"stage": ["active", "at_risk"]})) == [at_risk.pk, vip.pk]
    assert ids(key_client.get("/api/v1/customers/", {"product": "prod_vanilla"})) == [vip.pk]
    # One row per customer even with two matching subscriptions.
    assert ids(key_client.get("/api/v1/customers/", {"subscription_status": ["past_due", "canceled"]})) == [at_risk.pk]
    assert key_client.get("/api/v1/customers/", {"stage": "nowhere"}).status_code == 400


def test_created_and_changed_since(key_client):
    old = CustomerFactory()
    new = CustomerFactory()
    long_ago = timezone.now() - timedelta(days=10)
    type(old).objects.filter(pk=old.pk).update(created_at=long_ago, updated_at=long_ago)
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(key_client.get("/api/v1/customers/", {"created_since": since})) == [new.pk]
    assert ids(key_client.get("/api/v1/customers/", {"changed_since": since})) == [new.pk]


def test_search_email_name_and_external_ids(key_client):
    alice = CustomerFactory(email="alice@example.com", name="Alice Miner", stripe_customer_id="cus_A1")
    bob = CustomerFactory(email="bob@example.com", name="Bob", discord_user_id="4242", mautic_contact_id="77")
    assert ids(key_client.get("/api/v1/customers/", {"search": "alice@"})) == [alice.pk]
    assert ids(key_client.get("/api/v1/customers/", {"search": "miner"})) == [alice.pk]
    assert ids(key_client.get("/api/v1/customers/", {"search": "cus_A1"})) == [alice.pk]
    assert ids(key_client.get("/api/v1/customers/", {"search": "4242"})) == [bob.pk]
    assert ids(key_client.get("/api/v1/customers/", {"search": "77"})) == [bob.pk]
    assert ids(key_client.get("/api/v1/customers/", {"search": "cus_A"})) == []  # external ids match exactly


def test_detail_with_subscriptions_tickets_and_suppression(key_client):
    customer = CustomerFactory(opt_in_confirmed=True)
    subscription(customer, status="active", cancel_at_period_end=True)
    TicketFactory(
        customer=customer, discord_user_id="1", subject="Lag on my server", category="technical", status="open"
    )
    TicketFactory(customer=customer, discord_user_id="1", subject="Refund", category="billing")  # opening
    TicketFactory(customer=customer, discord_user_id="1", subject="old", status="closed")
    Suppression.objects.create(email=customer.email, reason=SuppressionReason.UNSUBSCRIBE)

    body = key_client.get(f"/api/v1/customers/{customer.pk}/").json()
    assert body["email"] == customer.email
    assert [(s["status"], s["cancel_at_period_end"]) for s in body["subscriptions"]] == [("active", True)]
    # Not closed yet, newest first; a ticket whose channel is still being made counts.
    assert [(t["subject"], t["status"]) for t in body["open_tickets"]] == [
        ("Refund", "opening"),
        ("Lag on my server", "open"),
    ]
    assert body["suppression"] == {
        "reasons": ["unsubscribe"],
        "marketing_allowed": False,
        "transactional_allowed": True,
    }


def test_timeline_paged_and_filtered(key_client, customer):
    base = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        TimelineEventFactory(
            customer=customer,
            occurred_at=base + timedelta(hours=n),
            source=TimelineSource.STRIPE if n % 2 else TimelineSource.EMAIL,
            kind="invoice.paid" if n % 2 else "email.sent",
        )
        for n in range(6)
    ]
    TimelineEventFactory()  # someone else's
    url = f"/api/v1/customers/{customer.pk}/timeline/"
    page = key_client.get(url, {"page_size": 4})
    assert ids(page) == [e.pk for e in reversed(events)][:4]
    assert ids(key_client.get(page.json()["next"])) == [events[1].pk, events[0].pk]
    assert ids(key_client.get(url, {"source": "stripe"})) == [events[5].pk, events[3].pk, events[1].pk]
    assert ids(key_client.get(url, {"kind": "email.sent"})) == [events[4].pk, events[2].pk, events[0].pk]
    since = (base + timedelta(hours=4)).isoformat()
    assert ids(key_client.get(url, {"since": since})) == [events[5].pk, events[4].pk]
    assert key_client.get("/api/v1/customers/999999/timeline/").status_code == 404


def test_stage_history(key_client, customer):
    now = timezone.now()
    moves = [
        StageTransition.objects.create(
            customer=customer, from_stage=a, to_stage=b, cause="test", occurred_at=now + timedelta(minutes=n)
        )
        for n, (a, b) in enumerate([("discovery", "trial"), ("trial", "purchase")])
    ]
    body = key_client.get(f"/api/v1/customers/{customer.pk}/stage-history/").json()
    assert [(row["id"], row["to_stage"]) for row in body["results"]] == [
        (moves[1].pk, "purchase"),
        (moves[0].pk, "trial"),
    ]


def test_subscriptions_list_filters_and_detail(key_client):
    a, b = CustomerFactory(), CustomerFactory()
    scheduled = subscription(a, cancel_at_period_end=True, cancellation_reason="cancellation_requested")
    past_due = subscription(b, status="past_due", product_id="prod_vanilla")
    ended = subscription(b, n=2, status="canceled", cancel_at_period_end=True, ended_at=timezone.now())
    url = "/api/v1/subscriptions/"
    assert ids(key_client.get(url)) == [ended.pk, past_due.pk, scheduled.pk]
    assert ids(key_client.get(url, {"status": "past_due"})) == [past_due.pk]
    assert ids(key_client.get(url, {"product": "prod_vanilla"})) == [past_due.pk]
    assert ids(key_client.get(url, {"cancel_scheduled": "true"})) == [scheduled.pk]
    assert ids(key_client.get(url, {"cancellation_reason": "cancellation_requested"})) == [scheduled.pk]
    detail = key_client.get(f"{url}{scheduled.pk}/").json()
    assert detail["customer"] == a.pk and detail["customer_email"] == a.email and "metadata" in detail


@pytest.mark.parametrize(
    ("url", "make", "expected"),
    [
        # key + service account, the account's permissions (one query), the page
        ("/api/v1/customers/", lambda n: CustomerFactory.create_batch(n), 3),
        ("/api/v1/subscriptions/", lambda n: [subscription(CustomerFactory()) for _ in range(n)], 3),
    ],
)
def test_query_count_does_not_grow_with_page_size(key_client, url, make, expected):
    make(30)
    assert query_counts(key_client, url, (5, 30)) == [expected, expected]


def test_timeline_query_count_does_not_grow_with_page_size(key_client, customer):
    TimelineEventFactory.create_batch(40, customer=customer)
    # key, permissions, the customer, the page
    assert query_counts(key_client, f"/api/v1/customers/{customer.pk}/timeline/", (5, 40)) == [4, 4]
