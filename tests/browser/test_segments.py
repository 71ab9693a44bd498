"""Marketing builds a segment in a real browser: a condition row typed in words, a wrong value refused on its row,
then the saved segment's page with who it reaches now. Screenshot: segment.png."""

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from config.roles import MARKETING, roles_sync
from marketing.audience import segment_audience
from marketing.models import Segment
from tests.customers.factories import CustomerFactory, StaffUserFactory


@pytest.fixture
def marketer(transactional_db):
    roles_sync()
    user = StaffUserFactory(username="marketer")
    user.groups.add(Group.objects.get(name=MARKETING))
    return user


def test_marketing_builds_a_segment_and_sees_its_count(login, marketer, screenshot):
    for n in range(3):
        CustomerFactory(name=f"Active {n}", lifecycle_stage="active", opt_in_confirmed=True)
    CustomerFactory(name="Active, no consent", lifecycle_stage="active")
    CustomerFactory(name="On trial", lifecycle_stage="trial", opt_in_confirmed=True)

    page = login(marketer)
    page.goto("/admin/")
    page.click("text=Segments")
    page.get_by_role("link", name="Add segment", exact=True).click()  # not the sidebar's "Add" next to "Segments"
    page.fill("#id_name", "Active players")
    page.select_option("#id_conditions-0-field", "lifecycle_stage")
    page.select_option("#id_conditions-0-operator", "one_of")
    page.fill("#id_conditions-0-value", "actve")
    page.click("input[name=_continue]")
    page.wait_for_load_state()
    assert "Not known values: actve" in page.locator(".errorlist").first.inner_text()

    page.fill("#id_conditions-0-value", "Active")
    page.click("input[name=_continue]")
    page.wait_for_load_state()
    segment = Segment.objects.get(name="Active players")
    expected = segment_audience(segment=segment, at=timezone.now()).count()
    reach = page.locator(".field-reach_now")
    assert expected == 3
    assert "3 customers would receive a marketing email sent to this segment now" in reach.inner_text()
    assert "4 customers match: Lifecycle stage is one of active" in reach.inner_text()
    assert reach.locator("li a").count() == 3
    screenshot(page, "segment")
    assert page.console_errors == []
