"""The cancel page walked in Chromium on a phone with JavaScript off, for each reason: the offer Marketing set for it
accepted by one customer and declined by another. Each choice changes Stripe (the loopback fake) once, the page says
what happens to the server and its data, nothing is loaded from elsewhere and nothing scrolls sideways."""

from urllib.parse import urlsplit

import pytest
import stripe
from django.core.cache import cache

from billing.retention.models import REASONS, SaveOffer
from billing.retention.sessions import cancel_session_create, cancel_session_url
from devtools.fakes.stripe.server import FakeStripe
from tests.billing.factories import SubscriptionFactory
from tests.customers.factories import CustomerFactory

PHONE = {"width": 375, "height": 740}
# Every kind of offer, spread over the reasons; "other" has none (the customer only confirms).
OFFERS = {
    "too_expensive": ("discount", "30% off for 3 months instead"),
    "missing_features": ("downgrade", "Move to Starter instead"),
    "switched_service": ("pause", "Pause for 1 month instead"),
    "unused": ("pause", "Pause for 3 months instead"),
    "customer_service": ("discount", "30% off for 3 months instead"),
    "too_complex": ("downgrade", "Move to Starter instead"),
    "low_quality": ("pause", "Pause for 2 months instead"),
}


@pytest.fixture
def stripe_fake(monkeypatch, settings):
    settings.BILLING_CANCEL_HOLDOUT_PERCENT = 0
    settings.MODREADY_STRIPE_PRODUCT_IDS = []
    cache.clear()
    with FakeStripe() as fake:
        monkeypatch.setattr(stripe, "api_base", fake.url)
        yield fake


def _offers(fake, cheaper: dict) -> None:
    months = {"switched_service": 1, "unused": 3, "low_quality": 2}
    for reason, (kind, _) in OFFERS.items():
        terms = {
            "pause": {"pause_months": months.get(reason)},
            "discount": {"discount_percent": 30, "discount_months": 3},
            "downgrade": {
                "downgrade_price_id": cheaper["id"],
                "downgrade_plan_name": "Starter",
                "downgrade_amount": 699,
            },
        }[kind]
        SaveOffer.objects.create(reason=reason, kind=kind, **terms)


def _link(fake, product, price, n: int) -> tuple[str, str]:
    world = fake.add_subscription(email=f"player{n}@example.com", product=product, price=price)
    item = world.subscription["items"]["data"][0]
    subscription = SubscriptionFactory(
        customer=CustomerFactory(email=f"player{n}@example.com", stripe_customer_id=world.customer["id"]),
        stripe_subscription_id=world.subscription["id"],
        item_id=item["id"],
        price_id=price["id"],
        amount=1499,
    )
    return urlsplit(
        cancel_session_url(session=cancel_session_create(subscription=subscription))
    ).path, world.subscription["id"]


def _fits_and_stays_home(page, hosts: set, live_server) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert hosts == {urlsplit(live_server.url).netloc}


@pytest.mark.parametrize("reason", list(REASONS))
def test_each_reason_accepted_and_declined_on_a_phone(browser, live_server, transactional_db, stripe_fake, reason):
    product = stripe_fake.add_product(name="ModReady Pro")
    price = stripe_fake.add_price(product=product, unit_amount=1499)
    _offers(stripe_fake, stripe_fake.add_price(product=product, unit_amount=699))
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, java_script_enabled=False, is_mobile=True)
    hosts: set = set()
    try:
        for n, choice in enumerate(["accept", "decline"]):
            path, sub_id = _link(stripe_fake, product, price, n)
            page = context.new_page()
            page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
            page.goto(path)
            assert "Why do you want to cancel?" in page.inner_text("main")
            page.check(f"input[value={reason}]")
            page.fill("textarea[name=comment]", f"Walked by the browser ({choice})")
            with page.expect_navigation():
                page.click("text=Continue")
            text = page.inner_text("main")
            assert "Cancel my subscription on" in text and "is switched off. Its files and settings are kept" in text
            _fits_and_stays_home(page, hosts, live_server)
            offered = OFFERS.get(reason)
            if offered:
                assert offered[1] in text and "Its files and settings are kept" in text
            else:
                assert "Confirm your cancellation" in text and "instead" not in text
            if choice == "accept" and offered:
                with page.expect_navigation():
                    page.click("#offer button")
                assert "Done: your subscription stays" in page.inner_text("main")
            else:
                with page.expect_navigation():
                    page.click("#cancel button")
                assert "Your subscription is canceled at the end of the period" in page.inner_text("main")
            page.reload()  # the browser's reload of the result changes nothing
            [update] = [u for u in stripe_fake.subscription_updates if u["id"] == sub_id]
            params = update["params"]
            if choice == "accept" and offered:
                expected = {"pause": "pause_collection[behavior]", "discount": "discounts[0][coupon]"}
                assert expected.get(offered[0], "items[0][price]") in params
            else:
                assert params["cancel_at_period_end"] == "true"
                assert params["cancellation_details[feedback]"] == reason
            _fits_and_stays_home(page, hosts, live_server)
            page.close()
    finally:
        context.close()
