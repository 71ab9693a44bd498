import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from api.models import ServiceAccountKey
from tests.customers.factories import StaffUserFactory
from tests.webhooks.factories import OutboundDeliveryFactory
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client):
    client.force_login(StaffUserFactory(is_superuser=True))
    return client


def test_endpoint_created_in_admin_shows_its_secret_once(owner_client):
    response = owner_client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {
            "url": "http://127.0.0.1:9999/hooks",
            "description": "panel",
            "event_types": ["customer.churned"],
            "enabled": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_") and endpoint.event_types == ["customer.churned"]
    assert any(endpoint.secret in str(m) for m in get_messages(response.wsgi_request))
    # The change page never shows it again.
    page = owner_client.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]))
    assert endpoint.secret not in page.content.decode()


def test_admin_refuses_a_private_url_in_production(owner_client, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = owner_client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {"url": "https://169.254.169.254/latest", "event_types": ["customer.churned"]},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "non-public address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_api_key_created_in_admin_is_shown_once_and_stored_hashed(owner_client):
    account = StaffUserFactory(is_staff=False, username="website")
    response = owner_client.post(
        reverse("admin:api_serviceaccountkey_add"), {"name": "website", "user": account.pk}, follow=True
    )
    assert response.status_code == 200
    key_row = ServiceAccountKey.objects.get()
    [full_key] = [
        re.search(r"is: (\S+)\. Please", str(m)).group(1)
        for m in get_messages(response.wsgi_request)
        if "The API key for" in str(m)
    ]
    assert ServiceAccountKey.objects.get_from_key(full_key) == key_row
    assert full_key not in key_row.hashed_key


def test_failed_delivery_is_replayed_from_the_admin(owner_client, customer):
    endpoint = services.endpoint_create(url="http://127.0.0.1:9/hooks", event_types=["customer.churned"])
    delivery = OutboundDeliveryFactory(
        endpoint=endpoint,
        customer=customer,
        event_type="customer.churned",
        message_id="msg_modready_1",
        sequence=1,
        body="{}",
        status=DeliveryStatus.FAILED,
        attempts=10,
        next_attempt_at=timezone.now(),
    )
    changelist = reverse("admin:webhooks_outbounddelivery_changelist")
    assert "Replay the selected deliveries" in owner_client.get(changelist).content.decode()
    owner_client.post(changelist, {"action": "replay", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.message_id) == (DeliveryStatus.PENDING, 0, "msg_modready_1")


@pytest.mark.parametrize(
    "url",
    [
        "https://[64:ff9b::a9fe:a9fe]/latest",  # NAT64 (RFC 6052) of 169.254.169.254
        "https://[64:ff9b::7f00:1]/hooks",  # NAT64 of 127.0.0.1
        "https://[64:ff9b::10.0.0.5]/hooks",  # the same, written with the IPv4 tail
        "https://[64:ff9b:1::808:808]/hooks",  # local-use NAT64 (RFC 8215), whatever it carries
        "https://[2002:a9fe:a9fe::1]/latest",  # 6to4 of 169.254.169.254
        "https://[2002:c0a8:1::1]/hooks",  # 6to4 of 192.168.0.1
        "https://[::127.0.0.1]/hooks",  # IPv4-compatible (deprecated)
        "https://[::10.0.0.5]/hooks",
        "https://[::ffff:10.0.0.5]/hooks",  # IPv4-mapped (already refused)
        "https://[::ffff:0:a00:5]/hooks",  # SIIT IPv4-translated (RFC 6145) of 10.0.0.5
        "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hooks",  # Teredo, its client end 127.0.0.1
    ],
)
def test_admin_refuses_ipv6_forms_that_wrap_an_internal_ipv4_address(owner_client, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = owner_client.post(
        reverse("admin:webhooks_webhookendpoint_add"), {"url": url, "event_types": ["customer.churned"]}
    )
    assert response.status_code == 200  # the form again, with the error
    assert "non-public address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_the_api_key_form_offers_only_service_accounts(owner_client):
    account = StaffUserFactory(is_staff=False, username="website")
    StaffUserFactory(is_superuser=True, username="boss")
    support = StaffUserFactory(username="sam")

    page = owner_client.get(reverse("admin:api_serviceaccountkey_add")).content.decode()
    picker = re.search(r'<select name="user".*?</select>', page, re.S).group(0)
    assert f'value="{account.pk}"' in picker
    assert "boss" not in picker and "sam" not in picker

    refused = owner_client.post(reverse("admin:api_serviceaccountkey_add"), {"name": "sneaky", "user": support.pk})
    assert refused.status_code == 200  # the form again, with the error
    assert not ServiceAccountKey.objects.exists()
