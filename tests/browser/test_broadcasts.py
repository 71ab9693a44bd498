"""Issue 20 in a real browser: Marketing builds a segment and sees its count, composes a broadcast with an A/B subject
(2,000 opted-in customers, so each arm of a 50% test share gets the 500 a test needs), schedules it; the one-minute
tick starts it when it is due; Marketing pauses it, sees its emails held, and resumes it. Then a recipient opens the
preference page from the signed link and turns the broadcast's topic off, and the broadcast's audience shrinks by
one. (tests/browser/test_preferences.py covers the preference page itself on a phone, without JavaScript.)
Screenshots: broadcast-compose.png, broadcast-testing.png, broadcast-paused.png."""

import re
from datetime import timedelta
from importlib import import_module
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.utils import timezone

from automations.models import EmailQueueItem, QueueStatus
from automations.preference_links import preferences_url
from config.roles import MARKETING, roles_sync
from customers.consent import topic_choices
from customers.models import Customer, Topic
from marketing.broadcast_models import Broadcast, BroadcastStatus
from marketing.broadcast_tasks import broadcasts_tick
from tests.automations.factories import EmailTemplateFactory
from tests.customers.factories import StaffUserFactory

AUDIENCE = 2000


@pytest.fixture
def marketer(transactional_db):
    roles_sync()
    user = StaffUserFactory(username="marketer")
    user.groups.add(Group.objects.get(name=MARKETING))
    return user


@pytest.fixture
def players(transactional_db):
    """2,000 active customers with marketing consent, two who do not match, in bulk."""
    import_module("customers.migrations.0013_topics_and_consent").create_default_topics(apps, None)  # flushed tables
    Customer.objects.bulk_create(
        [
            Customer(email=f"p{n}@example.com", name=f"Player {n}", lifecycle_stage="active", opt_in_confirmed=True)
            for n in range(AUDIENCE)
        ]
        + [
            Customer(email="quiet@example.com", name="No consent", lifecycle_stage="active"),
            Customer(email="trial@example.com", name="On trial", lifecycle_stage="trial", opt_in_confirmed=True),
        ]
    )


@pytest.fixture
def drain_left_to_the_test(monkeypatch):
    """The queue's drain runs when the test says (as its schedule would), not inline after each queued chunk: the
    emails stay queued, so pausing has something to hold."""
    monkeypatch.setattr("automations.services.bulk_sends.queue_process_enqueue", lambda: None)
    monkeypatch.setattr("automations.drain_control.queue_process_enqueue", lambda: None)  # the resume's


def figure(page, row: str, name: str) -> int:
    return int(page.locator(f'tr[data-row="{row}"] td[data-figure="{name}"]').inner_text())


def test_marketing_sends_an_ab_broadcast_and_a_customer_changes_topics(
    login, marketer, players, drain_left_to_the_test, browser, live_server, screenshot
):
    EmailTemplateFactory(
        name="Frankfurt is live",
        category="marketing",
        subject="Frankfurt is live, {{ customer.first_name }}",
        html_body='<p>Lower ping in Germany. <a href="{{ preferences_url }}">Your email choices</a></p>',
    )
    page = login(marketer)

    # The segment, and its count.
    page.goto("/admin/marketing/segment/add/")
    page.fill("#id_name", "Active players")
    page.select_option("#id_conditions-0-field", "lifecycle_stage")
    page.select_option("#id_conditions-0-operator", "one_of")
    page.fill("#id_conditions-0-value", "Active")
    page.click("input[name=_continue]")
    page.wait_for_load_state()
    assert "2,000 customers would receive a marketing email sent to this segment now" in page.inner_text(
        ".field-reach_now"
    )

    # Compose with an A/B subject; count first.
    page.click("#nav-sidebar a[href='/admin/marketing/broadcast/']")
    page.get_by_role("link", name="Add broadcast", exact=True).click()
    page.fill("#id_name", "Frankfurt launch")
    page.select_option("#id_topic", label="Product news")
    page.select_option("#id_segment", label="Active players")
    page.select_option("#id_template", label="Frankfurt is live")
    page.fill("#id_subject_b", "New: Frankfurt servers, {{ customer.first_name }}")
    page.fill("#id_test_share_percent", "50")
    page.click("#compose-count")
    page.wait_for_load_state()
    note = page.inner_text("#compose-audience")
    assert "2,000 customers would receive this broadcast if it started now" in note
    assert "A/B test: 500 recipients per variant (50% of 2000)" in note
    screenshot(page, "broadcast-compose")
    page.click("#compose-save")
    page.wait_for_load_state()
    broadcast = Broadcast.objects.get(name="Frankfurt launch")
    assert page.inner_text("#broadcast-status") == "Draft"
    assert page.locator("#audience-now").get_attribute("data-audience") == str(AUDIENCE)
    assert "A/B test: 2 variants" in page.inner_text("#broadcast-variants")

    # Schedule it; when it is due, the one-minute tick starts it.
    at = (timezone.now() + timedelta(hours=1)).replace(second=0, microsecond=0)
    page.fill("#id_at", at.strftime("%Y-%m-%dT%H:%M"))
    page.click("#action-schedule")
    page.wait_for_load_state()
    assert f"Scheduled: sending starts {at:%Y-%m-%d %H:%M} UTC" in page.inner_text(".messagelist")
    assert page.inner_text("#broadcast-status") == "Scheduled"
    assert EmailQueueItem.objects.count() == 0

    Broadcast.objects.filter(pk=broadcast.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))  # time passes
    broadcasts_tick()
    page.click("#broadcast-reload")
    page.wait_for_load_state()
    assert page.inner_text("#broadcast-status") == BroadcastStatus.TESTING.label
    assert "A/B test: 500 recipients per variant (50% of 2000)" in page.inner_text("#ab-note")
    assert [figure(page, f"Variant {label}", "recipients") for label in "AB"] == [500, 500]
    assert figure(page, "All variants", "queued") == 1000
    assert "Opens are not reliable: Apple Mail Privacy Protection" in page.inner_text("#opens-unreliable")
    screenshot(page, "broadcast-testing")

    # Pause: the emails are held; resume: they go back to the queue.
    page.fill("#id_pause_reason", "Wrong date in the text")
    page.click("#action-pause")
    page.wait_for_load_state()
    assert page.inner_text("#broadcast-status") == "Paused"
    assert figure(page, "All variants", "held") == 1000 and figure(page, "All variants", "queued") == 0
    assert EmailQueueItem.objects.filter(status=QueueStatus.PAUSED).count() == 1000
    assert "Wrong date in the text" in page.inner_text("#broadcast-audit")
    screenshot(page, "broadcast-paused")
    page.click("#action-resume")
    page.wait_for_load_state()
    assert "Resumed" in page.inner_text(".messagelist")
    assert page.inner_text("#broadcast-status") != "Paused"
    assert figure(page, "All variants", "held") == 0 and figure(page, "All variants", "queued") == 1000
    assert page.console_errors == []

    # A recipient leaves the broadcast's topic on the preference page (the signed link every marketing email has).
    recipient = broadcast.recipients.select_related("customer").first().customer
    customer_context = browser.new_context(base_url=live_server.url)
    try:
        customer_page = customer_context.new_page()
        customer_page.goto(urlsplit(preferences_url(customer_id=recipient.pk)).path)
        assert recipient.email in customer_page.inner_text("main")
        customer_page.get_by_label("Product news").uncheck()
        customer_page.get_by_role("button", name="Save my choices").click()
        assert "Saved." in customer_page.inner_text("main")
    finally:
        customer_context.close()
    product_news = Topic.objects.get(slug="product-news")
    assert topic_choices(customer=recipient, topics=[product_news])[product_news.pk] is False
    page.click("#broadcast-reload")
    page.wait_for_load_state()
    assert page.locator("#audience-now").get_attribute("data-audience") == str(AUDIENCE - 1)
    assert re.search(r"1,?999 customers", page.inner_text("#audience-now"))
