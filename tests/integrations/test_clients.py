"""The Mautic, Shopware and EspoCRM clients against their fakes: the traps, retries and typed errors."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from devtools.fakes import shopware as shopware_fake
from integrations.espocrm.client import EspoCrmClient, EspoCrmError
from integrations.mautic.client import MauticClient, MauticError
from integrations.models import ProviderAccessToken
from integrations.shopware.client import ShopwareClient, ShopwareError


@pytest.fixture
def mautic(fakes):
    return MauticClient.from_settings()


def test_mautic_exact_email_search_and_empty_list_answer(fakes, mautic):
    fakes.mautic.add_contact(email="ada@example.com.au")
    wanted = fakes.mautic.add_contact(email="ada@example.com")

    assert mautic.contact_find_by_email("ada@example.com").id == wanted
    assert mautic.contact_find_by_email("nobody@example.com") is None  # the fake answers `"contacts": []`
    search = fakes.mautic.requests_to("GET", "/api/contacts")[0]
    assert search.query["where[0][expr]"] == ["eq"] and "search" not in search.query


def test_mautic_send_failure_inside_a_200_is_an_error(fakes, mautic):
    contact_id = fakes.mautic.add_contact(email="ada@example.com")
    fakes.mautic.email_fail_next()
    with pytest.raises(MauticError) as caught:
        mautic.email_send(email_id="12", contact_id=contact_id)
    assert caught.value.call == "emails.send" and "emails.send" in str(caught.value)


def test_mautic_reads_are_retried_after_429_retry_after_and_5xx(fakes, mautic):
    contact_id = fakes.mautic.add_contact(email="ada@example.com")
    fakes.mautic.fail_next(429, retry_after=0.2)
    fakes.mautic.fail_next(502)
    assert mautic.contact_get(contact_id).email == "ada@example.com"
    assert len(fakes.mautic.requests) == 3


def test_mautic_error_names_the_call_and_never_the_password(fakes, mautic, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MauticError) as caught:
        mautic.contact_get("999999")
    assert caught.value.status == 404 and caught.value.call == "contacts.get"
    assert shopware_fake.CLIENT_SECRET not in str(caught.value)
    from devtools.fakes.mautic import PASSWORD

    assert PASSWORD not in str(caught.value) and PASSWORD not in caplog.text


@pytest.mark.django_db  # the token is shared through the database
def test_shopware_token_is_cached_and_refreshed_before_expiry(fakes):
    client = ShopwareClient.from_settings()
    client.individual_code_get("0" * 32)
    client.individual_code_get("1" * 32)
    assert client.token_fetches == 1

    fakes.shopware.tokens.clear()  # revoked early: a 401 fetches a new token once
    client.individual_code_get("2" * 32)
    assert client.token_fetches == 2

    # Shortly before the 10 minutes are over (the shared token's expiry moved close; no sleeping).
    soon = timezone.now() + timedelta(seconds=30)
    ProviderAccessToken.objects.update(expires_at=soon)
    client._token_expires = soon
    client.individual_code_get("3" * 32)
    assert client.token_fetches == 3
    assert client.session.headers["Authorization"].startswith("Bearer ")


@pytest.mark.django_db  # the token is shared through the database
def test_shopware_token_is_shared_by_clients_in_other_runs_and_processes(fakes):
    first, second = ShopwareClient.from_settings(), ShopwareClient.from_settings()  # e.g. two runs, two workers
    first.individual_code_get("0" * 32)
    second.individual_code_get("1" * 32)
    assert fakes.shopware.token_count == 1
    assert (first.token_fetches, second.token_fetches) == (1, 0)


@pytest.mark.django_db  # the token is shared through the database
def test_shopware_token_expired_at_shopware_is_fetched_again_once(fakes):
    client = ShopwareClient.from_settings()
    client.individual_code_get("0" * 32)
    fakes.shopware.advance(600)  # Shopware's ten minutes are over while our copy still looks good

    assert client.individual_code_get("1" * 32) is None  # 401, one fresh token, the call again
    assert fakes.shopware.token_count == 2
    assert ShopwareClient.from_settings().individual_code_get("2" * 32) is None
    assert fakes.shopware.token_count == 2  # the fresh token is the shared one


@pytest.mark.django_db  # the token is shared through the database
def test_shopware_duplicate_is_a_500_recognised_as_duplicate(fakes):
    client = ShopwareClient.from_settings()
    client.individual_code_create(id="a" * 32, promotion_id=shopware_fake.PROMOTION_ID, code="VIP-1")
    with pytest.raises(ShopwareError) as caught:
        client.individual_code_create(id="b" * 32, promotion_id=shopware_fake.PROMOTION_ID, code="VIP-1")
    assert caught.value.status == 500 and caught.value.is_duplicate
    assert client.individual_code_get("a" * 32).code == "VIP-1"
    assert len(fakes.shopware.requests_to("POST", "/api/promotion-individual-code")) == 2  # a POST is never retried


def test_espocrm_finds_an_existing_lead(fakes):
    lead_id = fakes.espocrm.add_lead(email="ada@example.com")
    assert EspoCrmClient.from_settings().lead_ensure(email="ada@example.com") == (lead_id, False)
    assert fakes.espocrm.requests_to("POST", "/api/v1/Lead") == []


def test_espocrm_creates_a_missing_lead(fakes):
    lead_id, created = EspoCrmClient.from_settings().lead_ensure(email="new@example.com", first_name="New")
    assert created and fakes.espocrm.leads[lead_id]["firstName"] == "New"
    assert fakes.espocrm.requests_to("POST", "/api/v1/Lead")[0].header("x-api-key") == fakes.espocrm_key


def test_espocrm_409_duplicate_takes_the_existing_lead(fakes):
    existing = fakes.espocrm.add_lead(email="ada@example.com")
    fakes.espocrm.search_misses = True
    assert EspoCrmClient.from_settings().lead_ensure(email="ada@example.com") == (existing, False)
    assert len(fakes.espocrm.leads) == 1


def test_espocrm_bad_key_is_a_typed_error(fakes, settings):
    settings.ESPOCRM_API_KEY = "wrong"
    with pytest.raises(EspoCrmError) as caught:
        EspoCrmClient.from_settings().lead_find_by_email("ada@example.com")
    assert caught.value.status == 401 and caught.value.call == "lead.find"
