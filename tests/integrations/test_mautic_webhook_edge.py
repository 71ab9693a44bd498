"""Issue 17: the Mautic webhook as an attacker (or a broken Mautic) sends it. A hostile signature header is a 401;
a correctly signed but malformed body is a 400, kept with the reason and never processed; a field that fails its
check is refused and recorded, the rest of the contact applies, and the API never shows what its schema forbids."""

import json

import pytest
from django.core.validators import validate_email
from rest_framework.test import APIClient

from api.models import ServiceAccountKey
from customers.models import Customer
from integrations.mautic.webhook import MauticWebhookView
from integrations.models import InboundWebhook, RunStatus, WorkflowRun
from tests.customers.factories import CustomerFactory
from tests.webhook_cases import StoredWebhookCases

pytestmark = pytest.mark.django_db


@pytest.fixture
def raw_client(client):
    client.raise_request_exception = False  # a crash is answered as production would: 500
    return client


@pytest.mark.parametrize("signature", ["é" * 44, "Zm9yZ2Vk\u00e9", "\u2603"])
def test_non_ascii_signature_is_401_not_500(fakes, deliver_mautic, raw_client, signature):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)

    response = deliver_mautic(fakes.mautic.webhook_body([contact_id]), signature=signature)

    assert response.status_code == 401
    assert InboundWebhook.objects.count() == 0


def _event(contact: dict) -> dict:
    return {"contact": contact, "timestamp": "2025-08-20T09:41:02+00:00"}


def _good_contact(contact_id: str = "4711", email: str = "ada@example.com") -> dict:
    return {
        "id": contact_id,
        "dateModified": "2025-08-20T09:41:02+00:00",
        "fields": {"core": {"email": {"value": email}, "opt_in_confirmed": {"value": "1"}}, "social": []},
    }


MALFORMED = {
    "NaN literal": b'{"mautic.lead_post_save_update": [{"contact": {"id": NaN}}]}',
    "Infinity in a field": (
        b'{"mautic.lead_post_save_update": [{"contact": {"id": "4711", "fields": {"core": {"points": '
        b'{"value": 1e999}}}}}]}'
    ),
    "an integer too long to parse": b'{"mautic.lead_post_save_update": [{"contact": {"id": ' + b"9" * 5000 + b"}}]}",
    "a huge contact id": json.dumps({"mautic.lead_post_save_update": [_event({"id": 10**40})]}).encode(),
    "a contact id that is an object": json.dumps({"mautic.lead_post_save_update": [_event({"id": {"a": 1}})]}).encode(),
    "a contact id that is text": json.dumps({"mautic.lead_post_save_update": [_event({"id": "abc"})]}).encode(),
    "a contact id that is a float": b'{"mautic.lead_post_save_update": [{"contact": {"id": 47.5}}]}',
    "fields that are a string": json.dumps(
        {"mautic.lead_post_save_update": [_event({"id": "4711", "fields": "core"})]}
    ).encode(),
    "a field group that is a number": json.dumps(
        {"mautic.lead_post_save_update": [_event({"id": "4711", "fields": {"core": 7}})]}
    ).encode(),
    "dateModified that is a number": json.dumps(
        {"mautic.lead_post_save_update": [_event({"id": "4711", "dateModified": 1755682862})]}
    ).encode(),
    "dateModified that is not a date": json.dumps(
        {"mautic.lead_post_save_update": [_event({"id": "4711", "dateModified": "yesterday"})]}
    ).encode(),
    "nesting deep enough to exhaust the stack": b'{"x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
    "an event type with an unpaired surrogate": b'{"\\ud800\\u0000": 1}',
    "not UTF-8": b'{"mautic.lead_post_save_update": "\xff\xfe"}',
    # The whole delivery or nothing: a good first event does not apply when the second is malformed.
    "a good event then a bad one": json.dumps(
        {"mautic.lead_post_save_update": [_event(_good_contact()), _event({"id": [1]})]}
    ).encode(),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_signed_malformed_body_is_400_kept_with_its_reason_and_never_applied(fakes, deliver_mautic, raw_client, body):
    response = deliver_mautic(body)  # correctly signed

    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed:")
    delivery = InboundWebhook.objects.get()
    assert delivery.status == "rejected"
    assert delivery.last_error.startswith("malformed:") and len(delivery.last_error) > len("malformed: ")
    assert WorkflowRun.objects.count() == 0 and Customer.objects.count() == 0
    # Posted again (Mautic does not retry, but a replay might): the same answer, still one row.
    assert deliver_mautic(body).status_code == 400
    assert InboundWebhook.objects.count() == 1


def _api_customers() -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from config.roles import SERVICE_ACCOUNTS

    user = get_user_model().objects.create_user(username="schema-reader")
    user.groups.add(Group.objects.get(name=SERVICE_ACCOUNTS))
    _, key = ServiceAccountKey.objects.create_key(name="reader", user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = client.get("/api/v1/customers/")
    assert response.status_code == 200
    return response.json()["results"]


def test_a_javascript_invite_link_is_refused_and_recorded_and_the_rest_applies(fakes, deliver_mautic):
    contact_id = fakes.mautic.add_contact(
        email="ada@example.com",
        firstname="Ada",
        opt_in_confirmed=False,
        promo_code="VIP-ADA",
        discord_invite_link_basic="javascript:alert(document.cookie)",
        discord_invite_link_vip="https://discord.gg.evil.example/abc",
    )

    response = deliver_mautic(fakes.mautic.webhook_body([contact_id]))

    assert response.status_code == 202
    customer = Customer.objects.get(email="ada@example.com")
    assert customer.discord_invite_link_basic == "" and customer.discord_invite_link_vip == ""
    assert customer.promo_code == "VIP-ADA" and customer.name == "Ada"  # the rest of the contact applied
    refused = InboundWebhook.objects.get().refused_fields
    assert any("discord_invite_link_basic" in item and "not a Discord invite link" in item for item in refused)
    assert any("discord_invite_link_vip" in item for item in refused)
    run = WorkflowRun.objects.get()
    assert run.status == RunStatus.SKIPPED  # not opted in
    step = run.steps.get(name="mautic.refused_fields")
    assert "discord_invite_link_basic" in step.detail and "discord_invite_link_vip" in step.detail


def test_a_real_discord_invite_link_from_mautic_is_kept(fakes, deliver_mautic):
    contact_id = fakes.mautic.add_contact(
        email="ada@example.com", discord_invite_link_basic="https://discord.com/invite/AbC123"
    )
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    assert Customer.objects.get().discord_invite_link_basic == "https://discord.com/invite/AbC123"
    assert InboundWebhook.objects.get().refused_fields == []


def test_an_email_that_is_not_an_address_is_refused_and_the_api_stays_within_its_schema(fakes, deliver_mautic):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=False, promo_code="OLD")
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    fakes.mautic.update_contact(contact_id, email="{'a': 1}", promo_code="NEW-CODE")

    response = deliver_mautic(fakes.mautic.webhook_body([contact_id]))

    assert response.status_code == 202
    assert any(
        item.startswith(f"contact {contact_id}: email: not an email address")
        for item in InboundWebhook.objects.order_by("-id").first().refused_fields
    )
    # The customer linked to the contact keeps its address and gets the rest of the contact.
    customer = Customer.objects.get()
    assert customer.email == "ada@example.com" and customer.promo_code == "NEW-CODE"
    run = WorkflowRun.objects.order_by("-id").first()
    assert "email" in run.steps.get(name="mautic.refused_fields").detail
    for row in _api_customers():
        validate_email(row["email"])


@pytest.mark.parametrize(
    "field, value",
    [
        ("opt_in_confirmed", {"a": 1}),  # truthy, but not a yes/no value
        ("vip_status", [1]),
        ("promo_code", "X" * 65),  # longer than the customer's column
        ("promo_code", {"code": "VIP"}),
        ("firstname", "Ada\x00"),
    ],
)
def test_a_field_of_the_wrong_type_is_refused_not_stored(fakes, deliver_mautic, field, value):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", lastname="Lovelace")
    fakes.mautic.contacts[int(contact_id)][field] = value

    assert deliver_mautic(fakes.mautic.webhook_body([contact_id])).status_code == 202

    customer = Customer.objects.get()
    assert customer.opt_in_confirmed is False and customer.vip_status is False
    assert customer.promo_code == "" and customer.name == "Lovelace"
    refused = InboundWebhook.objects.get().refused_fields
    assert any(item.startswith(f"contact {contact_id}: {field}:") for item in refused)
    assert WorkflowRun.objects.get().status == RunStatus.SKIPPED  # not opted in: nothing sent


def test_values_stored_unchecked_before_are_cleared_by_the_data_migration():
    from importlib import import_module

    from django.apps import apps

    migration = import_module("customers.migrations.0011_clear_invalid_values_from_mautic")
    bad = CustomerFactory(email="{'a': 1}", discord_invite_link_basic="javascript:alert(1)", mautic_contact_id="4711")
    good = CustomerFactory(email="ada@example.com", discord_invite_link_vip="https://discord.gg/AbC123")

    migration.clear_invalid_values(apps, None)

    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.email == "" and bad.discord_invite_link_basic == ""
    assert bad.metadata["invalid_email_from_mautic"] == "{'a': 1}"
    assert bad.metadata["cleared_invalid_values"] == {"discord_invite_link_basic": "javascript:alert(1)"}
    assert (good.email, good.discord_invite_link_vip, good.metadata) == (
        "ada@example.com",
        "https://discord.gg/AbC123",
        {},
    )
    for row in _api_customers():
        if row["email"]:
            validate_email(row["email"])


def test_staff_see_why_a_delivery_was_refused_in_the_admin(fakes, deliver_mautic, client):
    from django.urls import reverse

    from tests.customers.factories import StaffUserFactory

    contact_id = fakes.mautic.add_contact(email="ada@example.com", discord_invite_link_basic="javascript:alert(1)")
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    deliver_mautic(b'{"mautic.lead_post_save_update": [{"contact": {"id": NaN}}]}')
    accepted, refused = InboundWebhook.objects.order_by("id")
    client.force_login(StaffUserFactory(is_superuser=True))

    page = client.get(reverse("admin:integrations_inboundwebhook_change", args=[accepted.pk])).content.decode()
    assert "not a Discord invite link" in page
    page = client.get(reverse("admin:integrations_inboundwebhook_change", args=[refused.pk])).content.decode()
    assert "NaN is not a JSON number" in page
    listing = client.get(reverse("admin:integrations_inboundwebhook_changelist")).content.decode()
    assert "Refused (malformed, not processed)" in listing and "NaN is not a JSON number" in listing


class TestMauticWebhookCases(StoredWebhookCases):
    """The shared cases (tests/webhook_cases.py); Mautic answers a bad signature with 401."""

    provider = "mautic"
    path = "/api/webhooks/mautic"
    event = "lead_post_save_update"
    view_class = MauticWebhookView
    bad_signature_status = 401

    @pytest.fixture(autouse=True)
    def _configured(self, fakes):
        pass

    def delivered_count(self) -> int:
        return InboundWebhook.objects.exclude(status="rejected").count()  # a refused body is kept, not accepted

    def stored_row(self):
        return InboundWebhook.objects.get()

    def unconfigure(self, settings) -> None:
        settings.MAUTIC_WEBHOOK_SECRET = ""
