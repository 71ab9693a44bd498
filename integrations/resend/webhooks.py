"""Resend's tracking webhook on the one incoming-webhook base view (integrations/webhooks/views.py), answered now.

anymail's `ResendTrackingWebhookView` verifies the Svix signature, reads the events and we send its `tracking`
signal (automations/subscribers.py applies them). Around it:
- Only this one view is mounted (automations/urls.py), not `anymail.urls`, which mounts every provider's inbound and
  tracking views, including Resend's inbound view that calls Resend's API with our key for anyone who posts to it.
- The Svix library raises ValueError/binascii.Error on a malformed `svix-signature` (no comma, three parts, bad
  base64) and UnicodeDecodeError on a body that is not UTF-8; anymail lets them through as 500s. Here each is a 400.
- Without RESEND_SIGNING_SECRET anymail would accept unsigned posts (or fail on an empty secret): here the endpoint
  answers 503, so Resend keeps retrying until the secret is configured, and logs why.
- A signed body that is not a Resend event object is a 400 rather than a KeyError.

Svix signatures: https://docs.svix.com/receiving/verifying-payloads/how-manual; Resend's events:
https://resend.com/docs/dashboard/webhooks/event-types.
"""

import base64
import binascii
import logging
import secrets

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.webhooks.resend import ResendTrackingWebhookView as AnymailResendTrackingWebhookView
from anymail.webhooks.resend import SvixWebhook
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from integrations.webhooks.views import AnsweredWebhookView, UnreadablePayload, WebhookRefused

logger = logging.getLogger(__name__)


# Handed to anymail when there is no usable secret, so that its view still builds (and does not warn about unsigned
# webhooks on every request); the base view answers 503 before it could be used. Random per process: it matches
# nothing.
_UNUSABLE_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
MAX_BODY_BYTES = 256 * 1024  # one event is a few kilobytes


def signing_secret() -> str:
    return (settings.ANYMAIL.get("RESEND_SIGNING_SECRET") or "").strip()


def signing_secret_problem(secret: str) -> str | None:
    """Why the secret cannot verify anything, or None when it can (also used by the start-up check)."""
    if not secret:
        return "RESEND_SIGNING_SECRET is not set"
    try:
        SvixWebhook(secret)
    except Exception:  # the Svix library raises binascii.Error, its own EmptyWebhookSecretError, RuntimeError
        return "RESEND_SIGNING_SECRET is not a valid Svix secret (whsec_ followed by base64)"
    return None


class ResendTrackingWebhookView(AnsweredWebhookView):
    provider = "resend"

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        secret = signing_secret()
        self.secret_problem = signing_secret_problem(secret)
        usable = secret if self.secret_problem is None else _UNUSABLE_SECRET
        self.anymail_view = AnymailResendTrackingWebhookView(signing_secret=usable)

    def configuration_problem(self) -> str | None:
        if self.secret_problem is None:
            return None
        return (
            f"{self.secret_problem}, so its signature cannot be checked (copy the webhook's whsec_... signing secret "
            "from Resend into RESEND_SIGNING_SECRET)"
        )

    def max_body_bytes(self) -> int:
        return MAX_BODY_BYTES

    def signature_valid(self, request: HttpRequest, body: bytes) -> bool:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookRefused(400, "body is not UTF-8") from None
        try:
            self.anymail_view.run_validators(request)
        except AnymailWebhookValidationFailure:
            return False
        except (ValueError, TypeError, binascii.Error):
            # ValueError covers a signature without a comma or with extra parts and bad base64 (binascii.Error is a
            # ValueError; listed for the reader); TypeError a non-ASCII header meeting hmac.compare_digest.
            logger.warning("Resend tracking webhook with a malformed signature header (svix-id %r)", _svix_id(request))
            raise WebhookRefused(400, "malformed svix-signature header") from None
        return True

    def payload_problem(self, payload) -> str | None:
        problem = resend_event_problem(payload)
        return f"not a Resend event: {problem}" if problem else None

    def answer(self, request: HttpRequest, payload) -> HttpResponse:
        try:
            events = self.anymail_view.parse_events(request)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
            # anymail indexes into the payload (data.bounce.message, data.headers[].name, data.click.link) and only
            # expects the keys to be missing, not to hold the wrong type.
            raise UnreadablePayload(f"anymail could not read it ({type(exc).__name__})") from exc
        for event in events:
            self.anymail_view.signal.send(sender=self.__class__, event=event, esp_name=self.anymail_view.esp_name)
        return HttpResponse()


def resend_event_problem(payload) -> str | None:
    """Why a signed body is not a Resend event, or None (https://resend.com/docs/dashboard/webhooks/event-types:
    `type`, `created_at`, and `data` with the email's `email_id`, `to`, `created_at`)."""
    if not isinstance(payload, dict):
        return f"the body is a JSON {type(payload).__name__}, not an event object"
    if not isinstance(payload.get("type"), str) or not payload["type"]:
        return "`type` is missing or not text"
    data = payload.get("data")
    if not isinstance(data, dict):
        return "`data` is missing or not an object"
    for name in ("email_id", "created_at"):
        if name in data and not isinstance(data[name], str):
            return f"`data.{name}` is not text"
    if "created_at" in payload and not isinstance(payload["created_at"], str):
        return "`created_at` is not text"
    if "to" in data and not (isinstance(data["to"], list) and all(isinstance(to, str) for to in data["to"])):
        return "`data.to` is not a list of addresses"
    for name, fields in (("bounce", ("message", "type", "subType")), ("click", ("link", "userAgent", "ipAddress"))):
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            return f"`data.{name}` is not an object"
        if any(value.get(field) is not None and not isinstance(value[field], str) for field in fields):
            return f"`data.{name}` has a field that is not text"
    tags = data.get("tags")
    if tags is not None and not _tags_readable(tags):
        return "`data.tags` is neither {name: value} nor a list of {name, value} with text"
    return None


def _tags_readable(tags) -> bool:
    if isinstance(tags, dict):
        return all(isinstance(value, str) for value in tags.values())
    if isinstance(tags, list):
        return all(
            isinstance(tag, dict) and isinstance(tag.get("name"), str) and isinstance(tag.get("value", ""), str)
            for tag in tags
        )
    return False


def _svix_id(request: HttpRequest) -> str:
    return request.headers.get("svix-id", "")[:100]
