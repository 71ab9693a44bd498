"""The page behind an expired card-update link, on a phone with JavaScript off: it says what the link does and what
to do now, loads nothing from elsewhere, and fits the screen."""

import time
from unittest import mock
from urllib.parse import urlsplit

from billing.card_update_links import card_update_url
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
