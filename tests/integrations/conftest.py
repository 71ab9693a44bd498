"""Every provider of the crowdfunding workflows played by a fake on 127.0.0.1, and settings pointing at them."""

import pytest

from devtools.fakes import espocrm as espocrm_fake
from devtools.fakes import mautic as mautic_fake
from devtools.fakes import shopware as shopware_fake
from devtools.fakes.discord import interactions as discord_fake
from devtools.fakes.discord.server import FakeDiscord
from devtools.fakes.espocrm import FakeEspoCrm
from devtools.fakes.mautic import FakeMautic, sign
from devtools.fakes.shopware import FakeShopware

INVITE_CHANNEL_ID = "1600000000000000001"


@pytest.fixture(scope="session")
def _servers():
    with FakeMautic() as mautic, FakeShopware() as shopware, FakeEspoCrm() as espocrm, FakeDiscord() as discord:
        yield {"mautic": mautic, "shopware": shopware, "espocrm": espocrm, "discord": discord}


@pytest.fixture
def fakes(_servers, settings):
    for server in _servers.values():
        server.reset()
    _servers["discord"].invites.clear()
    _servers["discord"].invite_limit = 1000
    settings.MAUTIC_ENABLED = settings.SHOPWARE_ENABLED = settings.ESPOCRM_ENABLED = True
    settings.DISCORD_INVITES_ENABLED = True
    settings.MAUTIC_BASE_URL = _servers["mautic"].url
    settings.MAUTIC_USERNAME, settings.MAUTIC_PASSWORD = mautic_fake.USERNAME, mautic_fake.PASSWORD
    settings.MAUTIC_WEBHOOK_SECRET = mautic_fake.WEBHOOK_SECRET
    settings.MAUTIC_EMAIL_INVITE_VIP, settings.MAUTIC_EMAIL_INVITE_BASIC, settings.MAUTIC_EMAIL_COUPON = (
        "11",
        "12",
        "13",
    )
    settings.SHOPWARE_BASE_URL = _servers["shopware"].url
    settings.SHOPWARE_CLIENT_ID, settings.SHOPWARE_CLIENT_SECRET = shopware_fake.CLIENT_ID, shopware_fake.CLIENT_SECRET
    settings.SHOPWARE_VIP_PROMOTION_ID = shopware_fake.PROMOTION_ID
    settings.ESPOCRM_BASE_URL = _servers["espocrm"].url
    settings.ESPOCRM_API_KEY = espocrm_fake.API_KEY
    settings.DISCORD_API_URL = _servers["discord"].api_url
    settings.DISCORD_BOT_TOKEN = discord_fake.BOT_TOKEN
    settings.DISCORD_APPLICATION_ID = discord_fake.APPLICATION_ID
    settings.DISCORD_INVITE_CHANNEL_ID = INVITE_CHANNEL_ID
    settings.DISCORD_INVITE_ROLE_ID_VIP, settings.DISCORD_INVITE_ROLE_ID_BASIC = "1700000000000000001", ""
    settings.STRIPE_VIP_RESERVATION_PRODUCT_ID = "prod_vip_reservation"
    settings.INTEGRATIONS_RETRY_BASE_SECONDS = 60
    return type("Fakes", (), {**_servers, "espocrm_key": espocrm_fake.API_KEY})


@pytest.fixture
def deliver_mautic(client, django_capture_on_commit_callbacks):
    """POST a delivery to /api/webhooks/mautic as Mautic would (signed), running the tasks it enqueues inline."""

    def post(body: bytes, *, signature: str | None = None):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/api/webhooks/mautic",
                data=body,
                content_type="application/json",
                headers={"Webhook-Signature": sign(body) if signature is None else signature},
            )

    return post


# Billing's fake Stripe and signed-delivery fixtures, for workflow 2 (triggered by billing's checkout events).
from tests.billing.conftest import (  # noqa: E402, F401
    _fresh_endpoint_cache,
    deliver,
    fake_stripe,
    fake_stripe_server,
    webhook_endpoint,
)
