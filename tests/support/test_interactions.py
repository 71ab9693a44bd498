"""The interactions endpoint: signature first, then JSON, PING, dedupe, answer shapes."""

import json

import pytest
from nacl.signing import SigningKey

from devtools.fakes.discord import interactions as fake_discord
from devtools.fakes.discord.interactions import sign_interaction
from support.models import DiscordInteraction, Ticket
from support.views import DiscordInteractionsView
from tests.support.conftest import CUSTOMER_DISCORD_ID
from tests.webhook_cases import WebhookCases
from tests.webhook_requests import event_fixture

pytestmark = pytest.mark.django_db


def test_ping_is_answered_with_pong(discord, send):
    response = send(event_fixture("discord", "ping"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"type": 1}


def test_forged_signature_is_refused_before_parsing(discord, send):
    body = json.dumps({"type": 1}).encode()
    forged = sign_interaction(body, key=SigningKey.generate())
    assert send({}, raw=body, headers=forged).status_code == 401


def test_missing_signature_and_tampered_body_are_refused(discord, send):
    body = json.dumps({"type": 1}).encode()
    assert send({}, raw=body, headers={}).status_code == 401
    headers = sign_interaction(body)
    assert send({}, raw=body + b" ", headers=headers).status_code == 401
    assert send({}, raw=body, headers={**headers, "X-Signature-Ed25519": "zz"}).status_code == 401


def test_signature_over_another_timestamp_is_refused(discord, send):
    body = json.dumps({"type": 1}).encode()
    headers = sign_interaction(body, timestamp="1700000000")
    assert send({}, raw=body, headers={**headers, "X-Signature-Timestamp": "1700000001"}).status_code == 401


def test_malformed_json_gets_400(discord, send):
    assert send({}, raw=b'{"type": 1,').status_code == 400


def test_signed_payload_that_is_no_interaction_gets_400_and_stores_nothing(discord, send):
    assert send({}, raw=b"[1, 2]").status_code == 400
    assert send({"type": 3, "id": "5", "data": {"custom_id": "ticket:open"}}).status_code == 400  # no user
    bad_custom_id = fake_discord.button_click("nonsense", user_id=CUSTOMER_DISCORD_ID)
    assert send(bad_custom_id).status_code == 400
    assert Ticket.objects.count() == 0


def test_without_a_configured_public_key_everything_is_refused(discord, send, settings):
    settings.DISCORD_PUBLIC_KEY = ""
    assert send({"type": 1, "id": "1"}).status_code == 503  # our configuration's fault, as for every incoming webhook


def test_open_button_answers_with_the_modal_within_discord_limits(discord, send):
    response = send(fake_discord.button_click("ticket:open", user_id=CUSTOMER_DISCORD_ID))
    modal = response.json()
    assert modal["type"] == 9
    components = modal["data"]["components"]
    assert 1 <= len(components) <= 5
    assert all(c["type"] == 18 and len(c["label"]) <= 45 for c in components)
    assert len(modal["data"]["title"]) <= 45
    select = components[0]["component"]
    assert select["type"] == 3
    assert [o["value"] for o in select["options"]] == ["purchase", "setup", "technical", "billing", "other"]
    assert discord.requests == []  # a modal is answered inline: no REST call


def test_a_repeated_interaction_id_acts_once(discord, send):
    fields = {"category": ["setup"], "subject": "Mods", "description": "How do I install mods", "email": ""}
    payload = fake_discord.modal_submit("ticket:open-modal", fields, user_id=CUSTOMER_DISCORD_ID)
    first = send(payload)
    second = send(payload)
    assert first.json()["type"] == 5
    assert second.json()["data"]["content"] == "Already handled."
    assert Ticket.objects.count() == 1
    assert len(discord.ticket_channels()) == 1
    assert DiscordInteraction.objects.filter(interaction_id=payload["id"]).count() == 1


class TestDiscordInteractionsWebhookCases(WebhookCases):
    """The shared cases (tests/webhook_cases.py). Discord's answer to any signature it cannot verify is 401; without a
    public key the endpoint answers 503 (test_without_a_configured_public_key_everything_is_refused)."""

    provider = "discord"
    path = "/api/discord/interactions"
    event = "message_component"
    view_class = DiscordInteractionsView
    bad_signature_status = 401
    accepted_statuses = (200,)

    @pytest.fixture(autouse=True)
    def _configured(self, discord):
        pass

    def delivered_count(self) -> int:
        return DiscordInteraction.objects.count()

    def unconfigure(self, settings) -> None:
        settings.DISCORD_PUBLIC_KEY = ""
