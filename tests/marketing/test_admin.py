"""Marketing builds segments in the admin: condition rows checked per field, and the page's count is the audience's."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from marketing.audience import segment_audience
from marketing.models import Segment
from tests.marketing.factories import cast, segment_with

pytestmark = pytest.mark.django_db


def form_data(name: str, rows: list[tuple[str, str, str]], match: str = "all") -> dict:
    data = {
        "name": name,
        "description": "",
        "match": match,
        "conditions-TOTAL_FORMS": str(len(rows)),
        "conditions-INITIAL_FORMS": "0",
        "conditions-MIN_NUM_FORMS": "0",
        "conditions-MAX_NUM_FORMS": "1000",
    }
    for n, (field, operator, value) in enumerate(rows):
        data.update(
            {f"conditions-{n}-field": field, f"conditions-{n}-operator": operator, f"conditions-{n}-value": value}
        )
    return data


def shown_count(page: str) -> int:
    return int(re.search(r'data-segment-audience="(\d+)"', page).group(1))


def test_marketing_builds_a_segment_and_its_page_counts_the_audience(client, marketing_user):
    people = cast(timezone.now())
    client.force_login(marketing_user)
    response = client.post(
        reverse("admin:marketing_segment_add"),
        form_data("Active or churned", [("lifecycle_stage", "one_of", "Active, churned"), ("vip", "no", "")], "any"),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    segment = Segment.objects.get(name="Active or churned")
    assert segment.created_by == marketing_user
    assert list(segment.conditions.values_list("field", "operator", "value")) == [
        ("lifecycle_stage", "one_of", ["active", "churned"]),
        ("vip", "no", None),
    ]
    page = client.get(reverse("admin:marketing_segment_change", args=[segment.pk])).content.decode()
    audience = list(segment_audience(segment=segment, at=timezone.now()))
    assert shown_count(page) == len(audience) == 2  # Ada and Ben; Cleo has no consent, Dan unsubscribed
    for customer in audience:
        assert reverse("admin:customers_customer_change", args=[customer.pk]) in page
    assert reverse("admin:customers_customer_change", args=[people.cleo.pk]) not in page
    assert "4 customers match" in page
    # The row reads back as it was typed, in words.
    assert 'value="active, churned"' in page


def test_a_wrong_value_is_an_error_on_its_row_and_nothing_is_saved(client, marketing_user):
    client.force_login(marketing_user)
    response = client.post(
        reverse("admin:marketing_segment_add"),
        form_data("Broken", [("tenure", "at_least_days", "a year"), ("lifecycle_stage", "between", "x")]),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "A whole number of days from 1 to 36,500." in page
    assert "“Lifecycle stage” takes “is one of”, “is none of”" in page
    assert not Segment.objects.filter(name="Broken").exists()


def test_a_damaged_segment_page_says_so(client, marketing_user):
    segment = segment_with(("vip", "yes", None))
    segment.conditions.update(operator="between")
    client.force_login(marketing_user)
    response = client.get(reverse("admin:marketing_segment_change", args=[segment.pk]))
    assert response.status_code == 200
    assert "This segment cannot be evaluated" in response.content.decode()


def test_support_has_no_segments(client, support_user):
    client.force_login(support_user)
    assert client.get(reverse("admin:marketing_segment_changelist")).status_code == 403
