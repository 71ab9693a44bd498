"""A customer changes their email topics on the preference page, on a phone with JavaScript off: the page fits the
screen, says what each choice does, loads nothing from elsewhere, and saves the choice as consent records."""

from importlib import import_module
from urllib.parse import urlsplit

from django.apps import apps

from automations.preference_links import preferences_url
from customers.consent import topic_choices, topics_offered
from customers.models import ConsentRecord, ConsentSource
from tests.customers.factories import CustomerFactory

PHONE = {"width": 360, "height": 740}


def test_a_customer_turns_topics_off_and_leaves_marketing_on_a_phone(
    browser, live_server, transactional_db, screenshot
):
    import_module("customers.migrations.0013_topics_and_consent").create_default_topics(apps, None)  # flushed tables
    customer = CustomerFactory(email="lea@example.com", opt_in_confirmed=True)
    path = urlsplit(preferences_url(customer_id=customer.pk)).path
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, java_script_enabled=False, is_mobile=True)
    page = context.new_page()
    hosts = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    try:
        page.goto(path)
        text = page.inner_text("main")
        assert "Which emails do you want from ModReady?" in text and "lea@example.com" in text
        assert "Not ticked: you get none of them." in text
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no side scrolling
        screenshot(page, "preferences-phone")

        page.get_by_label("Offers").uncheck()
        page.get_by_label("Crowdfunding").uncheck()
        page.get_by_role("button", name="Save my choices").click()
        assert "Saved. From now on you get only the topics that are ticked." in page.inner_text("main")
        assert not page.get_by_label("Offers").is_checked() and page.get_by_label("Product news").is_checked()
        topics = topics_offered()
        chosen = topic_choices(customer=customer, topics=topics)
        assert {topic.slug for topic in topics if not chosen[topic.pk]} == {"offers", "crowdfunding"}
        assert ConsentRecord.objects.filter(customer=customer, source=ConsentSource.PREFERENCE_PAGE).count() == 2

        page.get_by_role("button", name="Stop all marketing email").click()
        assert "You will get no more news, offers or event emails" in page.inner_text("main")
        customer.refresh_from_db()
        assert customer.opt_in_confirmed is False
        screenshot(page, "preferences-phone-left")
        assert hosts == {urlsplit(live_server.url).netloc}  # nothing from a CDN or anywhere else
    finally:
        context.close()
