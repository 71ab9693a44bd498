"""The dashboard's cancel-page section: sessions, reasons, offers accepted per kind, customers saved against the
holdout with Newcombe's interval and the sample sizes, and pauses that resumed or ended in a cancellation."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.retention.models import CancelSession, SubscriptionChange
from core.proportions import newcombe_difference
from tests.billing.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def _session(now, *, days_ago, holdout=False, kind="pause", reason="unused", outcome="", ended_after_days=None):
    created = now - timedelta(days=days_ago)
    ended = created + timedelta(days=ended_after_days) if ended_after_days is not None else None
    subscription = SubscriptionFactory(status="canceled" if ended else "active", ended_at=ended)
    change = None
    if outcome:
        change = SubscriptionChange.objects.create(
            key=f"cancel-session:{subscription.pk}:{kind}",
            subscription=subscription,
            kind=kind if outcome == "accepted" else "cancel",
            params={},
            status="applied",
            created_at=created,
        )
    return CancelSession.objects.create(
        customer=subscription.customer,
        subscription=subscription,
        created_at=created,
        expires_at=created + timedelta(hours=1),
        holdout=holdout,
        reason=reason,
        offer_kind=kind,
        outcome=outcome,
        change=change,
    )


def _pause(now, *, resumed_days_ago, canceled_before_end):
    end = now - timedelta(days=resumed_days_ago)
    ended = end - timedelta(days=3) if canceled_before_end else None
    subscription = SubscriptionFactory(status="canceled" if ended else "active", ended_at=ended)
    SubscriptionChange.objects.create(
        key=f"ticket:{subscription.pk}:pause",
        subscription=subscription,
        kind="pause",
        params={"pause_collection": {"behavior": "void", "resumes_at": int(end.timestamp())}},
        status="applied",
        created_at=end - timedelta(days=30),
    )


def build(now):
    # Matured (40 days ago): 10 shown the offer, 7 still subscribed 30 days on; 5 in the holdout, 1 still subscribed.
    for n in range(10):
        _session(now, days_ago=40, outcome="accepted" if n < 6 else "canceled", ended_after_days=None if n < 7 else 20)
    for n in range(5):
        _session(now, days_ago=40, holdout=True, outcome="canceled", ended_after_days=None if n < 1 else 25)
    # Recent (this week): accepted a discount and a downgrade, one left without choosing.
    _session(now, days_ago=2, kind="discount", reason="too_expensive", outcome="accepted")
    _session(now, days_ago=3, kind="downgrade", reason="missing_features", outcome="accepted")
    _session(now, days_ago=1, kind="", reason="other")
    _pause(now, resumed_days_ago=5, canceled_before_end=False)
    _pause(now, resumed_days_ago=6, canceled_before_end=True)


def test_saved_customers_against_the_holdout_with_the_interval_and_sizes(admin_client):
    now = timezone.now()
    build(now)

    response = admin_client.get(reverse("admin:index"), {"days": 30})

    retention = response.context["dashboard"]["retention"]
    assert retention["sessions"] == 3  # started in the last 30 days
    assert retention["accepted"] == {
        "Pause the subscription": 0,
        "Discount for some months": 1,
        "Move to a cheaper plan": 1,
    }
    assert retention["undecided"] == 1
    comparison = retention["comparison"]
    assert (comparison["offered"]["n"], comparison["offered"]["saved"]) == (10, 7)
    assert (comparison["holdout"]["n"], comparison["holdout"]["saved"]) == (5, 1)
    interval = newcombe_difference(7, 10, 1, 5)
    assert comparison["difference"] == 50.0
    assert (comparison["low"], comparison["high"]) == (round(100 * interval.low, 1), round(100 * interval.high, 1))
    assert retention["pauses"] == {"resumed": 1, "canceled": 1}
    page = response.content.decode()
    assert "Customers saved: still subscribed 30 days after the session" in page
    assert f"95% confidence interval {comparison['low']} to {comparison['high']} points" in page

    ninety = admin_client.get(reverse("admin:index"), {"days": 90}).context["dashboard"]["retention"]
    assert ninety["sessions"] == 18 and ninety["accepted"]["Pause the subscription"] == 6


def test_the_section_costs_the_same_queries_at_any_size(admin_client):
    now = timezone.now()
    build(now)
    admin_client.get(reverse("admin:index"))
    with CaptureQueriesContext(connection) as small:
        admin_client.get(reverse("admin:index"))
    build(now)
    build(now)
    with CaptureQueriesContext(connection) as large:
        admin_client.get(reverse("admin:index"))
    assert len(large) == len(small)


def test_staff_without_the_permission_do_not_see_it(client, marketing_user, support_user):
    for user in (marketing_user, support_user):
        client.force_login(user)
        board = client.get(reverse("admin:index")).context["dashboard"]
        assert ("retention" in board) == user.has_perm("billing.view_cancelsession")
