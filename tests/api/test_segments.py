"""Segments over the REST API: definitions, live counts, members, and creation checked as the admin checks it."""

import pytest
from django.utils import timezone

from marketing.audience import segment_audience
from marketing.models import Segment
from tests.api.conftest import ids
from tests.marketing.factories import cast, segment_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    return cast(timezone.now())


def test_list_and_detail_give_the_definition_and_the_live_count(marketing_client, people):
    segment = segment_with(("lifecycle_stage", "none_of", ["trial"]), ("opened_email", "not_within_days", 30))
    listed = marketing_client.get("/api/v1/segments/").json()["results"]
    assert [row["name"] for row in listed] == [segment.name]
    assert listed[0]["conditions"][1] == {
        "field": "opened_email",
        "operator": "not_within_days",
        "value": 30,
        "description": "Opened any email not in the last 30 days",
    }
    assert "audience_count" not in listed[0]  # counting every segment of a page would cost a query each
    detail = marketing_client.get(f"/api/v1/segments/{segment.pk}/").json()
    assert detail["audience_count"] == segment_audience(segment=segment, at=timezone.now()).count() == 1  # Ben
    assert detail["matching_count"] == 2  # Ben, and Dan (unsubscribed)
    assert detail["problem"] == ""


def test_members_are_the_audience_paginated(marketing_client, people):
    segment = segment_with()
    from tests.customers.factories import CustomerFactory

    CustomerFactory.create_batch(3, opt_in_confirmed=True)
    expected = sorted(segment_audience(segment=segment, at=timezone.now()).values_list("pk", flat=True), reverse=True)
    first = marketing_client.get(f"/api/v1/segments/{segment.pk}/members/", {"page_size": 3}).json()
    second = marketing_client.get(first["next"]).json()
    assert [row["id"] for row in first["results"] + second["results"]] == expected
    assert len(expected) == 5  # Ada, Ben and the three new ones
    assert set(first["results"][0]) >= {"id", "email", "lifecycle_stage", "opt_in_confirmed"}


def test_a_damaged_segment_is_a_409_for_its_members_and_a_problem_in_its_detail(marketing_client, people):
    segment = segment_with(("tenure", "at_least_days", 10))
    segment.conditions.update(value="ten")
    assert marketing_client.get(f"/api/v1/segments/{segment.pk}/members/").status_code == 409
    detail = marketing_client.get(f"/api/v1/segments/{segment.pk}/").json()
    assert detail["audience_count"] is None and "whole number of days" in detail["problem"]


def test_marketing_creates_a_segment(marketing_client, marketing_user, people):
    body = {
        "name": "Germans who clicked",
        "match": "all",
        "conditions": [
            {"field": "country", "operator": "one_of", "value": ["DE"]},
            {"field": "clicked_email", "operator": "within_days", "value": 45},
        ],
    }
    response = marketing_client.post("/api/v1/segments/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["audience_count"] == 1  # Ada (Dan clicked too, but unsubscribed)
    segment = Segment.objects.get(name="Germans who clicked")
    assert segment.created_by == marketing_user and segment.conditions.count() == 2


@pytest.mark.parametrize(
    "condition, attr",
    [
        ({"field": "vip", "operator": "one_of", "value": ["yes"]}, "conditions.0.operator"),
        ({"field": "tenure", "operator": "at_least_days", "value": "90"}, "conditions.0.value"),
        ({"field": "lifecycle_stage", "operator": "one_of", "value": ["gone"]}, "conditions.0.value"),
        (
            {"field": "created", "operator": "between", "value": {"since": "2026-02-30", "until": "x"}},
            "conditions.0.value",
        ),
        ({"field": "shoe_size", "operator": "one_of", "value": [42]}, "conditions.0.field"),
        ({"field": "received_rule", "operator": "one_of", "value": [2**70]}, "conditions.0.value"),
    ],
)
def test_a_malformed_definition_is_a_400_and_nothing_is_saved(marketing_client, condition, attr):
    body = {"name": "Bad", "conditions": [{"field": "vip", "operator": "yes", "value": None}, condition]}
    body["conditions"] = [condition]
    response = marketing_client.post("/api/v1/segments/", body, format="json")
    assert response.status_code == 400, response.json()
    assert [error["attr"] for error in response.json()["errors"]] == [attr]
    assert not Segment.objects.exists()


def test_a_name_taken_is_a_400(marketing_client):
    segment_with(name="Everyone")
    response = marketing_client.post("/api/v1/segments/", {"name": "Everyone", "conditions": []}, format="json")
    assert response.status_code == 400
    assert Segment.objects.count() == 1


def test_who_may_read_and_create(support_client, key_client, marketing_client, client, people):
    segment = segment_with()
    for url in ("/api/v1/segments/", f"/api/v1/segments/{segment.pk}/", f"/api/v1/segments/{segment.pk}/members/"):
        assert support_client.get(url).status_code == 403, url
        assert key_client.get(url).status_code == 200, url
        assert marketing_client.get(url).status_code == 200, url
        assert client.get(url).status_code in (401, 403), url
    assert ids(key_client.get(f"/api/v1/segments/{segment.pk}/members/"))
    body = {"name": "From a tool", "conditions": []}
    assert key_client.post("/api/v1/segments/", body, format="json").status_code == 403
    assert support_client.post("/api/v1/segments/", body, format="json").status_code == 403
    assert not Segment.objects.filter(name="From a tool").exists()


def test_a_page_of_segments_costs_the_same_queries_at_any_size(marketing_client, people):
    from tests.api.conftest import query_counts

    for n in range(4):
        segment_with(
            ("received_template", "one_of", [people.welcome_template.pk]),
            ("received_rule", "none_of", [people.welcome_rule.pk]),
            ("lifecycle_stage", "one_of", ["active"]),
            name=f"Page {n}",
        )
    assert len(set(query_counts(marketing_client, "/api/v1/segments/", [1, 4]))) == 1
