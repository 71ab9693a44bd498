"""The page behind an expired card-update link, on a phone with JavaScript off: it says what the link does and what
to do now, loads nothing from elsewhere, and fits the screen."""

import time
from unittest import mock
from urllib.parse import urlsplit

from billing.card_update_links import card_update_url
from tests.billing.conftest import fake_stripe, fake_stripe_server  # noqa: F401 (fixtures)
from tests.customers.factories import CustomerFactory

PHONE = {"width": 390, "height": 844}


def test_an_expired_card_update_link_says_what_to_do_on_a_phone(
    browser, live_server, transactional_db, screenshot, settings
):
    settings.BILLING_CARD_UPDATE_LINK_DAYS = 14
    customer = CustomerFactory(email="mia@example.com", name="Mia", stripe_customer_id="cus_mia")
    real_time = time.time
    with mock.patch("time.time", lambda: real_time() - 15 * 86400):
        path = urlsplit(card_update_url(customer=customer)).path
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, java_script_enabled=False, is_mobile=True)
    page = context.new_page()
    hosts = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    try:
        response = page.goto(path)
        assert response.status == 410
        text = page.inner_text("main")
        assert "This link has expired" in text
        assert "update the card for your ModReady server" in text
        assert "Open the newest payment reminder email from ModReady and use its link" in text
        box = page.locator("main").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]  # no side scrolling
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "card-update-expired-phone")
        assert hosts == {urlsplit(live_server.url).netloc}  # nothing loaded from a CDN or anywhere else
    finally:
        context.close()


def test_the_link_in_a_dunning_email_opens_stripes_card_form_for_that_customer(
    browser,
    live_server,
    transactional_db,
    fake_stripe,  # noqa: F811
    settings,
    screenshot,
):
    """The shipped "Dunning 1" email for an expired card, opened as the customer sees it: its button goes through our
    link to Stripe's card form (the fake's portal page) for this customer, on the payment-method flow."""
    from importlib import import_module

    from django.apps import apps

    from automations.models import EmailTemplate
    from automations.queue_messages import message_for
    from automations.render_context import links_context
    from tests.automations.factories import QueuedEmailFactory

    import_module("automations.migrations.0002_default_flows").create_defaults(apps, None)
    import_module("automations.migrations.0017_card_update_link_in_dunning").link_card_update(apps, None)
    settings.SITE_URL = live_server.url
    stripe_customer = fake_stripe.add_customer(email="ola@example.com", name="Ola")
    customer = CustomerFactory(email="ola@example.com", name="Ola", stripe_customer_id=stripe_customer["id"])
    item = QueuedEmailFactory(
        enrollment__customer=customer,
        enrollment__context={
            "invoice_id": "in_1",
            "hosted_invoice_url": "https://invoice.stripe.com/i/x",
            "decline": {"kind": "hard", "code": "expired_card", "reason": "the card has expired"},
        },
        step__template=EmailTemplate.objects.get(name="Dunning 1 - payment failed"),
    )
    message = message_for(item, subscription=None, links=links_context())

    context = browser.new_context(viewport=PHONE, java_script_enabled=False, is_mobile=True)
    page = context.new_page()
    try:
        page.set_content(message["html"])
        assert "the card has expired" in page.inner_text("body")
        button = page.get_by_role("link", name="Add a new card")
        assert button.get_attribute("href").startswith(live_server.url + "/billing/card-update/")
        screenshot(page, "dunning-email-hard-decline-phone")
        with page.expect_navigation():
            button.click()
        [session] = fake_stripe.portal_sessions
        assert page.url == session["url"]  # the fake's stand-in for Stripe's portal page
        assert (session["customer"], session["flow"]["type"]) == (stripe_customer["id"], "payment_method_update")
    finally:
        context.close()
