"""One configuration-check style: a provider's settings declared once, checked at start, by `manage.py check`, by
its client before use, and by the paths that answer 503 while it is not configured."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.configuration import (
    configuration_check,
    provider_is_configured,
    provider_require,
    providers_configured,
)


def test_an_enabled_provider_missing_variables_names_them_all(settings):
    settings.ESPOCRM_ENABLED = True
    settings.ESPOCRM_BASE_URL = ""
    settings.ESPOCRM_API_KEY = ""
    with pytest.raises(ImproperlyConfigured) as raised:
        configuration_check()
    assert "ESPOCRM_ENABLED is on but ESPOCRM_BASE_URL is empty (also empty: ESPOCRM_API_KEY)" in str(raised.value)
    errors = [message for message in providers_configured(None) if message.id == "core.E001"]
    assert [error.msg for error in errors] == [str(raised.value)]


def test_a_client_of_a_disabled_or_unconfigured_provider_refuses(settings):
    settings.SHOPWARE_ENABLED = False
    with pytest.raises(ImproperlyConfigured, match="SHOPWARE_ENABLED is off"):
        provider_require("Shopware")
    settings.DISCORD_BOT_TOKEN = ""
    with pytest.raises(ImproperlyConfigured, match="DISCORD_BOT_TOKEN"):
        provider_require("Discord API")


def test_is_configured_needs_the_switch_and_every_variable(settings):
    settings.MAUTIC_ENABLED = False
    assert not provider_is_configured("Mautic")
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert not provider_is_configured("Stripe webhooks")  # optional: never stops the start
    configuration_check()
    settings.STRIPE_WEBHOOK_SECRET = "whsec_x"
    assert provider_is_configured("Stripe webhooks")
