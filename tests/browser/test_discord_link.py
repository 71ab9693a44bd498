"""The customer's page behind the emailed "connect your Discord account" link, on a phone with JavaScript off: it says
what will happen, changes nothing until the button is pressed, loads nothing from elsewhere, and fits the screen."""

from datetime import timedelta
from urllib.parse import urlsplit

from django.utils import timezone

from support.identity import link_token
from support.models import DiscordLinkRequest
from tests.customers.factories import CustomerFactory

PHONE = {"width": 390, "height": 844}


def test_a_customer_confirms_their_discord_account_on_a_phone_without_javascript(
    browser, live_server, transactional_db, screenshot
):
    customer = CustomerFactory(email="mia@example.com", name="Mia")
    link = DiscordLinkRequest.objects.create(
        customer=customer,
        discord_user_id="1700000000000000001",
        discord_username="mia_plays",
        email=customer.email,
        expires_at=timezone.now() + timedelta(minutes=30),
    )
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, java_script_enabled=False, is_mobile=True)
    page = context.new_page()
    hosts = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    try:
        page.goto(f"/support/discord-link/{link_token(link)}")
        text = page.inner_text("main")
        assert "Connect this Discord account to your ModReady account?" in text
        assert "mia_plays" in text and "mia@example.com" in text
        assert "our support staff see your ModReady account" in text
        yes = page.get_by_role("button", name="Yes, connect it")
        no = page.get_by_role("button", name="This was not me")
        for button in (yes, no):
            box = button.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]  # on screen, no side scrolling
            assert box["height"] >= 40  # big enough for a thumb
        screenshot(page, "discord-link-confirm-phone")
        customer.refresh_from_db()
        assert customer.discord_user_id == ""  # opening the page changed nothing

        yes.click()
        page.wait_for_load_state()
        assert "Your Discord account is connected" in page.inner_text("main")
        screenshot(page, "discord-link-done-phone")
        customer.refresh_from_db()
        assert customer.discord_user_id == "1700000000000000001"
        assert hosts == {urlsplit(live_server.url).netloc}  # nothing loaded from a CDN or anywhere else
    finally:
        context.close()
