"""The customer list's "entered a stage in a period" and "created in a period" filters (customers/list_filters.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from customers.models import Customer, StageTransition
from customers.services import customer_move_stage
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

LIST = "admin:customers_customer_changelist"
NOW = datetime(2026, 11, 21, 7, 52, tzinfo=UTC)


def _customer(name, *, stage="discovery", created_days_ago=100):
    customer = CustomerFactory(email=f"{name}@example.com", name=name.title(), lifecycle_stage=stage)
    Customer.objects.filter(pk=customer.pk).update(created_at=NOW - timedelta(days=created_days_ago))
    return customer


def _move(customer, from_stage, to_stage, *, days_ago):
    StageTransition.objects.create(
        customer=customer,
        from_stage=from_stage,
        to_stage=to_stage,
        cause="test",
        occurred_at=NOW - timedelta(days=days_ago),
    )


@pytest.fixture
def churners():
    """In the 30 days before NOW: ann and bob churned (bob twice), cy came back from a win-back that ended; dee
    churned before the period, eve is a trial."""
    ann, bob, cy, dee, eve = (_customer(n, stage="churned") for n in ("ann", "bob", "cy", "dee", "eve"))
    _move(ann, "active", "churned", days_ago=3)
    _move(bob, "active", "churned", days_ago=20)
    _move(bob, "at_risk", "churned", days_ago=5)
    _move(cy, "win_back", "churned", days_ago=4)
    _move(dee, "active", "churned", days_ago=45)
    _move(eve, "discovery", "trial", days_ago=2)
    Customer.objects.filter(pk=eve.pk).update(lifecycle_stage="trial")
    return {c.name.lower(): c for c in (ann, bob, cy, dee, eve)}


def _listed(response) -> list[str]:
    assert response.status_code == 200
    return sorted(customer.email.split("@")[0] for customer in response.context["cl"].result_list)


def _period(**extra):
    return {"entered_since": (NOW - timedelta(days=30)).isoformat(), "entered_until": NOW.isoformat(), **extra}


def test_lists_each_customer_who_entered_the_stage_in_the_period_once(admin_client, churners):
    response = admin_client.get(reverse(LIST), _period(entered="churned"))
    assert _listed(response) == ["ann", "bob", "cy"]  # bob entered twice, listed once; dee churned before
    heading = response.context["cl"].period_heading
    assert heading.startswith("Customers who entered Churned between 2026-10-22 07:52 and 2026-11-21 07:52 UTC.")
    assert "listed once" in heading
    assert heading.split(".")[0] in response.content.decode()


def test_not_from_leaves_out_the_moves_from_that_stage(admin_client, churners):
    response = admin_client.get(reverse(LIST), _period(entered="churned", entered_not_from="win_back"))
    assert _listed(response) == ["ann", "bob"]
    assert "entered Churned (not from Win-back) between" in response.context["cl"].period_heading


def test_a_bound_may_be_left_out(admin_client, churners):
    assert _listed(admin_client.get(reverse(LIST), {"entered": "churned"})) == ["ann", "bob", "cy", "dee"]
    since = {"entered": "churned", "entered_since": "2026-11-17"}  # bob's last move was on the 16th
    response = admin_client.get(reverse(LIST), since)
    assert _listed(response) == ["ann", "cy"]
    assert "entered Churned since 2026-11-17 00:00 UTC" in response.context["cl"].period_heading


def test_combines_with_search_and_the_other_filters(admin_client, churners):
    Customer.objects.filter(pk=churners["bob"].pk).update(lifecycle_stage="win_back")
    params = _period(entered="churned")
    assert _listed(admin_client.get(reverse(LIST), {**params, "q": "bob@"})) == ["bob"]
    assert _listed(admin_client.get(reverse(LIST), {**params, "lifecycle_stage__exact": "churned"})) == ["ann", "cy"]
    with_counts = admin_client.get(reverse(LIST), {**params, "_facets": "1"})  # the sidebar's "Show counts"
    assert _listed(with_counts) == ["ann", "bob", "cy"]
    assert "Churned (2)" in with_counts.content.decode()  # the stage filter's count, within the period's list


def test_the_sidebar_offers_the_stages_keeping_the_period(admin_client, churners):
    response = admin_client.get(reverse(LIST), _period(entered="churned", entered_not_from="win_back"))
    spec = next(spec for spec in response.context["cl"].filter_specs if spec.title == "entered a stage")
    choices = {choice["display"]: choice for choice in spec.choices(response.context["cl"])}
    assert choices["Churned"]["selected"] and not choices["Trial"]["selected"]
    trial = admin_client.get(reverse(LIST) + choices["Trial"]["query_string"])
    assert _listed(trial) == ["eve"]
    assert _listed(admin_client.get(reverse(LIST) + choices["Any stage, any time"]["query_string"])) == [
        "ann",
        "bob",
        "cy",
        "dee",
        "eve",
    ]


def test_created_in_a_period(admin_client):
    _customer("old", created_days_ago=40)
    _customer("new", created_days_ago=2)
    params = {"created_since": (NOW - timedelta(days=30)).isoformat(), "created_until": NOW.isoformat()}
    response = admin_client.get(reverse(LIST), params)
    assert _listed(response) == ["new"]
    assert response.context["cl"].period_heading == (
        "Customers who were created between 2026-10-22 07:52 and 2026-11-21 07:52 UTC."
    )


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({"entered": "gone"}, "entered='gone' is not a stage"),
        ({"entered": "churned", "entered_not_from": "x"}, "entered_not_from='x' is not a stage"),
        ({"entered": "churned", "entered_since": "last week"}, "entered_since='last week' is not a date or a time"),
        ({"entered": "churned", "entered_until": "2026-13-01"}, "entered_until='2026-13-01' is not a date or a time"),
        ({"entered_since": "2026-10-01"}, "say which stage with entered="),
        (
            {"entered": "churned", "entered_since": "2026-11-01", "entered_until": "2026-10-01"},
            "entered_since must be before entered_until",
        ),
        ({"created_since": "yesterday"}, "created_since='yesterday' is not a date or a time"),
    ],
)
def test_bad_parameters_say_what_is_wrong_and_list_without_that_filter(admin_client, churners, params, complaint):
    response = admin_client.get(reverse(LIST), params)
    assert response.status_code == 200
    shown = [str(message) for message in get_messages(response.wsgi_request)]
    assert len(shown) == 1 and "filter was not applied" in shown[0] and complaint in shown[0]
    assert response.context["cl"].result_count == 5
    assert response.context["cl"].period_heading == ""


def test_a_plus_typed_into_the_address_still_reads_as_an_offset(admin_client, churners):
    url = reverse(LIST) + "?entered=churned&entered_since=2026-11-17T00:00:00+00:00"  # "+" arrives as a space
    assert _listed(admin_client.get(url)) == ["ann", "cy"]


def test_the_funnel_pages_counts_link_to_their_customers(admin_client):
    recent = _customer("recent", stage="discovery")
    customer_move_stage(customer=recent, to_stage="trial", cause="test")  # as production moves, roll-up included
    rows = admin_client.get(reverse("admin:customers_customer_funnel"), {"days": 7}).context["rows"]
    trial = next(row for row in rows if row["stage"] == "Trial")
    assert trial["entered"] == 1 and _listed(admin_client.get(trial["entered_url"])) == ["recent"]
    assert trial["now"] == 1 and _listed(admin_client.get(trial["now_url"])) == ["recent"]
