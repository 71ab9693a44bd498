"""Correctly signed but malformed bodies, through HTTP, on the Stripe, Resend and Discord webhooks: each is a 400,
never a 500, and the refusal is logged and kept with its reason (integrations.RefusedWebhook).

Each body is signed with the provider's real scheme (Stripe-Signature, Svix, Ed25519), so the signature check passes
and what is tested is the reading of the body. Mautic's webhook is covered with its own tests."""

import json
import logging

import pytest
from djstripe.models import WebhookEventTrigger

from billing.models import StripeEventProcessing
from billing.stripe_webhook.endpoint import webhook_endpoint_cache_clear, webhook_endpoint_configure
from devtools.fakes.discord import interactions as fake_discord
from devtools.fakes.resend import SIGNING_SECRET as RESEND_SECRET
from devtools.fakes.resend import resend_event, svix_sign
from devtools.fakes.stripe.objects import signature_header, stripe_event
from integrations.models import RefusedWebhook
from support.models import DiscordInteraction, Ticket

pytestmark = pytest.mark.django_db

STRIPE_SECRET = "whsec_test_" + "b" * 32
RAW = "__raw_json_token__"  # replaced in the text by a token json.dumps cannot write (1e400, NaN, a 40-digit number)


def raw_json(value, token: str) -> bytes:
    return json.dumps(value).replace(f'"{RAW}"', token).encode()


def with_path(value: dict, path: str, replacement) -> dict:
    """A copy of `value` with the field at the dotted `path` replaced (or removed, for `...`)."""
    copy = json.loads(json.dumps(value))
    *parents, last = path.split(".")
    target = copy
    for name in parents:
        target = target[name]
    if replacement is ...:
        target.pop(last, None)
    else:
        target[last] = replacement
    return copy


NESTED = b"[" * 20_000 + b"]" * 20_000  # 40 KB, under every endpoint's size limit
GENERIC_BODIES = {
    "not JSON": b"{not json",
    "truncated JSON": b'{"type": "x", "data": {',
    "empty body": b"",
    "JSON array": b"[1, 2]",
    "JSON string": b'"evt_1"',
    "JSON number": b"42",
    "JSON null": b"null",
    "NaN": b'{"id": NaN}',
    "deeply nested": b'{"type": "x", "data": ' + NESTED + b"}",
    "nested 70 objects": b'{"type": "x", "data": ' + b'{"a": ' * 70 + b"1" + b"}" * 70 + b"}",
    "5,000-digit integer": b'{"type": "x", "created": ' + b"9" * 5000 + b"}",
}


def bodies(valid: dict, shaped: dict[str, tuple[str, object] | bytes]) -> list:
    """The generic bodies plus the provider's own: (path, replacement) on a valid event, or raw bytes."""
    cases = [pytest.param(body, id=name) for name, body in GENERIC_BODIES.items()]
    for name, spec in shaped.items():
        if isinstance(spec, bytes):
            body = spec
        else:
            path, replacement = spec
            if isinstance(replacement, str) and replacement.startswith("raw:"):
                body = raw_json(with_path(valid, path, RAW), replacement[4:])
            else:
                body = json.dumps(with_path(valid, path, replacement)).encode()
        cases.append(pytest.param(body, id=name))
    return cases


def assert_refused(response, provider: str, caplog) -> None:
    assert response.status_code == 400, response.content[:300]
    refusal = RefusedWebhook.objects.get()
    assert refusal.provider == provider and refusal.reason
    assert any(provider in record.getMessage().lower() for record in caplog.records if record.levelno >= logging.INFO)


# --- Stripe -----------------------------------------------------------------------------------------------------------

STRIPE_VALID = stripe_event(
    "customer.subscription.updated",
    {"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active"},
    event_id="evt_valid",
    created=1767225600,
)
STRIPE_SHAPED = {
    "missing type": ("type", ...),
    "missing data": ("data", ...),
    "missing data.object": ("data.object", ...),
    "missing created": ("created", ...),
    "type is a number": ("type", 5),
    "id is a list": ("id", ["evt_1"]),
    "data is a list": ("data", [1]),
    "data.object is text": ("data.object", "sub_1"),
    "data.object.id is a number": ("data.object.id", 12),
    "data.object.id missing": ("data.object.id", ...),
    "created is text": ("created", "yesterday"),
    "created is 1e400": ("created", "raw:1e400"),
    "created is a 40-digit number": ("created", "raw:" + "9" * 40),
    "created is negative": ("created", -5),
    "created is a float": ("created", 1767225600.5),
    "created is true": ("created", True),
    "an amount of 1e400": ("data.object.quantity", "raw:1e400"),
    "an amount of 2**70": ("data.object.quantity", 2**70),
    "NUL in the event id": ("id", "evt_\u0000"),
    "NUL in a field": ("data.object.status", "active\u0000"),
}


@pytest.fixture
def stripe_endpoint():
    webhook_endpoint_cache_clear()
    webhook_endpoint_configure(secret=STRIPE_SECRET, url="https://crm.modready.example/api/webhooks/stripe")
    yield
    webhook_endpoint_cache_clear()


@pytest.mark.parametrize("body", bodies(STRIPE_VALID, STRIPE_SHAPED))
def test_stripe_signed_malformed_body_is_a_400_logged_and_kept(client, stripe_endpoint, caplog, body):
    caplog.set_level(logging.INFO)
    response = client.post(
        "/api/webhooks/stripe",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature_header(body, STRIPE_SECRET),
    )
    assert_refused(response, "stripe", caplog)
    assert not StripeEventProcessing.objects.exists() and not WebhookEventTrigger.objects.exists()


def test_stripe_the_valid_event_these_are_made_from_is_accepted(
    client, stripe_endpoint, django_capture_on_commit_callbacks
):
    body = json.dumps(STRIPE_VALID).encode()
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            "/api/webhooks/stripe",
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signature_header(body, STRIPE_SECRET),
        )
    assert response.status_code == 200 and not RefusedWebhook.objects.exists()


# --- Resend -----------------------------------------------------------------------------------------------------------

RESEND_VALID = resend_event("email.bounced", email_id="em_1", to="a@example.com", created_at="2026-03-01T12:00:00Z")
RESEND_SHAPED = {
    "missing type": ("type", ...),
    "missing data": ("data", ...),
    "type is a number": ("type", 3),
    "data is a list": ("data", ["em_1"]),
    "data.to is text": ("data.to", "a@example.com"),
    "data.to holds a number": ("data.to", [5]),
    "data.email_id is an object": ("data.email_id", {"id": "em_1"}),
    "data.created_at is a number": ("data.created_at", 1767225600),
    "created_at is a list": ("created_at", ["2026"]),
    "data.created_at is 1e400": ("data.created_at", "raw:1e400"),
    "data.bounce is text": ("data.bounce", "hard"),
    "data.tags is text": ("data.tags", "welcome"),
    "NUL in the email id": ("data.email_id", "em_\u0000"),
    "a 40-digit number": ("data.created_at", "raw:" + "9" * 40),
    "data.bounce.message is a list": ("data.bounce", {"message": ["x"], "type": 5, "subType": None}),
    "data.headers is text": ("data.headers", "X-Entity: 1"),
    "data.headers holds text": ("data.headers", ["X-Entity"]),
    "data.click is a list": ("data.click", ["https://example.com"]),
    "data.click.link is a number": ("data.click", {"link": 5, "userAgent": 7}),
    "data.tags is a list of numbers": ("data.tags", [1, 2]),
}


@pytest.mark.parametrize("body", bodies(RESEND_VALID, RESEND_SHAPED))
def test_resend_signed_malformed_body_is_a_400_logged_and_kept(client, settings, caplog, body):
    caplog.set_level(logging.INFO)
    settings.ANYMAIL = {**settings.ANYMAIL, "RESEND_SIGNING_SECRET": RESEND_SECRET}
    headers = svix_sign(body, msg_id="msg_malformed")
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    response = client.post("/anymail/resend/tracking/", data=body, content_type="application/json", **meta)
    assert_refused(response, "resend", caplog)


# --- Discord ----------------------------------------------------------------------------------------------------------

CUSTOMER = "1700000000000000009"
DISCORD_VALID = fake_discord.button_click("ticket:open", user_id=CUSTOMER)
DISCORD_SHAPED = {
    "missing type": ("type", ...),
    "type is text": ("type", "3"),
    "type is 1e400": ("type", "raw:1e400"),
    "type is a 40-digit number": ("type", "raw:" + "9" * 40),
    "id is a list": ("id", ["1"]),
    "member is a list": ("member", ["x"]),
    "member.user is text": ("member.user", "someone"),
    "member.roles is a number": ("member.roles", 5),
    "member.roles is an object": ("member.roles", {"a": 1}),
    "data is a list": ("data", ["ticket:open"]),
    "data.custom_id is an object": ("data.custom_id", {"a": 1}),
    "NUL in the custom id": ("data.custom_id", "ticket:open\u0000"),
    "modal components is an object": (
        "data",
        {"custom_id": "ticket:open-modal", "components": {"type": 18}},
    ),
    "modal component is a list": (
        "data",
        {"custom_id": "ticket:open-modal", "components": [{"type": 18, "component": ["x"]}]},
    ),
    "modal values is a number": (
        "data",
        {"custom_id": "ticket:open-modal", "components": [{"type": 18, "component": {"custom_id": "x", "values": 5}}]},
    ),
}


@pytest.fixture
def discord_keys(settings):
    settings.DISCORD_PUBLIC_KEY = fake_discord.PUBLIC_KEY_HEX
    settings.DISCORD_APPLICATION_ID = fake_discord.APPLICATION_ID
    settings.DISCORD_STAFF_ROLE_ID = fake_discord.STAFF_ROLE_ID
    settings.DISCORD_API_URL = "http://127.0.0.1:9"  # nothing here may call Discord


@pytest.mark.parametrize("body", bodies(DISCORD_VALID, DISCORD_SHAPED))
def test_discord_signed_malformed_interaction_is_a_400_logged_and_kept(client, discord_keys, caplog, body):
    caplog.set_level(logging.INFO)
    headers = fake_discord.sign_interaction(body)
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    response = client.post("/api/discord/interactions", data=body, content_type="application/json", **meta)
    assert_refused(response, "discord", caplog)
    assert not Ticket.objects.exists()


def test_discord_the_valid_click_these_are_made_from_is_answered(client, discord_keys):
    body = json.dumps(DISCORD_VALID).encode()
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in fake_discord.sign_interaction(body).items()}
    response = client.post("/api/discord/interactions", data=body, content_type="application/json", **meta)
    assert response.status_code == 200 and not RefusedWebhook.objects.exists()
    assert DiscordInteraction.objects.count() == 1
