"""Schema-driven fuzzing with schemathesis, in process (the WSGI app, through pytest-django's test database).

Every operation of the generated OpenAPI schema gets generated requests, valid and invalid, twice: with a service
account's API key, and with a superuser's admin session that passed two-factor (as production requires). Every
response goes through all of schemathesis's checks: no 5xx, status codes, content types, headers and bodies as the
schema documents them, invalid input refused, valid input accepted. max_examples stays small so CI time stays modest;
set SCHEMATHESIS_EXAMPLES for a deeper run.

The schema is built at collection from drf-spectacular's generator (the same document /api/schema/ serves; the test
in test_auth.py fetches that endpoint). schemathesis's lazy `from_fixture` loader does not run on pytest 9.
"""

import json
import os
from datetime import timedelta

import pytest
import schemathesis
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.backends.db import SessionStore
from django.core import signals
from django.db import close_old_connections
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_otp import DEVICE_ID_SESSION_KEY
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from api.models import ServiceAccountKey
from api.throttling import PrincipalRateThrottle
from billing.models import Subscription
from config.roles import SERVICE_ACCOUNTS
from config.wsgi import application
from customers.models import StageTransition
from marketing.models import Segment, SegmentCondition
from tests.api.factories import TOTPDeviceFactory
from tests.automations.factories import (
    AutomationRuleFactory,
    AutomationStepFactory,
    QueuedEmailFactory,
    enrollment_with_emails,
)
from tests.customers.factories import CustomerFactory, TimelineEventFactory
from tests.integrations.factories import WorkflowRunFactory, WorkflowStepFactory
from tests.support.factories import TicketAttachmentFactory, TicketFactory, TicketMessageFactory

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8"))

schema = schemathesis.openapi.from_dict(
    json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
)
schema.app = application


@schema.hook("map_query")
def without_invented_cursors(context, query):
    """A cursor is opaque: the only valid ones are in an answer's next/previous links, so a generated one is refused
    with 400 (tests/api/test_query_parameters.py covers hand-made cursors). Valid requests start from the first page."""
    if query:
        query.pop("cursor", None)
    return query


def session_headers(user, device) -> dict[str, str]:
    """A staff session as the admin login leaves it after the password and the authenticator code (the device is in
    the session, as django-otp's login stores it), with the CSRF cookie and header a browser sends on writes."""
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store[DEVICE_ID_SESSION_KEY] = device.persistent_id
    store.create()
    csrf = get_random_string(32)
    return {
        "Cookie": f"{settings.SESSION_COOKIE_NAME}={store.session_key}; {settings.CSRF_COOKIE_NAME}={csrf}",
        "X-CSRFToken": csrf,
    }


def fuzz_data() -> None:
    """A row of each resource with nullable and blank parts both ways, so answers are checked against the schema on
    data like production's: a Stripe customer without an email, ended and open subscriptions, a rule with steps,
    enrollments and emails in several states, stage moves."""
    now = timezone.now()
    customer = CustomerFactory(metadata={"source": "fuzz", "nested": {"list": [1, None]}})
    no_email = CustomerFactory(email="", name="", stripe_customer_id="cus_fuzz_no_email")
    TimelineEventFactory.create_batch(3, customer=customer)
    StageTransition.objects.create(
        customer=customer, from_stage="new", to_stage="active", cause="fuzz", occurred_at=now, forced=True
    )
    for n, (owner, status) in enumerate([(customer, "active"), (no_email, "canceled")]):
        Subscription.objects.create(
            customer=owner,
            stripe_subscription_id=f"sub_fuzz_{n}",
            product_id="prod_fuzz",
            product_name="Fuzz 8 GB",
            status=status,
            amount=1999,
            currency="usd",
            interval="month",
            canceled_at=now if status == "canceled" else None,
            ended_at=now if status == "canceled" else None,
        )
    rule = AutomationRuleFactory(enabled=True)
    AutomationStepFactory(rule=rule, order=1)
    AutomationStepFactory(rule=rule, order=2, delay=timedelta(days=3))
    enrollment_with_emails(rule=rule, customer=customer)
    sent = QueuedEmailFactory(customer=no_email, recipient="old@example.com", status="sent")
    sent.sent_at = now
    sent.save()
    QueuedEmailFactory(status="failed", last_error="Resend said 422")
    # A row of each resource with nullable parts both ways, so list answers are checked against the schema too.
    ticket = TicketFactory(customer=customer, discord_user_id="1", subject="Lag", status="closed")
    TicketFactory(discord_user_id="2", subject="Unlinked")
    message = TicketMessageFactory(
        ticket=ticket, discord_message_id="10", author_id="1", author_name="alex", content="hi", sent_at=now
    )
    TicketAttachmentFactory(message=message, discord_attachment_id="20", filename="a.log", data=b"x")
    TicketAttachmentFactory(message=message, discord_attachment_id="21", filename="b.zip", too_large=True)
    run = WorkflowRunFactory(kind="contact_invite", key="fuzz", subject="mautic-contact:1", customer=customer)
    WorkflowRunFactory(kind="vip_coupon", key="fuzz-2", subject="cs_test_1", status="failed")
    WorkflowStepFactory(run=run, name="mautic.read", outcome="ok", started_at=now, finished_at=now)
    segment = Segment.objects.create(name="Fuzz segment", match="any")
    SegmentCondition.objects.create(segment=segment, field="lifecycle_stage", operator="one_of", value=["active"])
    SegmentCondition.objects.create(segment=segment, field="opened_email", operator="within_days", value=30)


@pytest.fixture(params=["service key", "superuser session with two-factor"])
def api_auth(request, db, monkeypatch, settings):
    settings.ADMIN_OTP_REQUIRED_FOR_SUPERUSERS = True  # as in production
    monkeypatch.setattr(PrincipalRateThrottle, "THROTTLE_RATES", {"principal": "100000/min"})
    # Requests go straight to the WSGI app: keep Django from closing the test transaction's connection at the end of
    # each request, as django.test.Client does.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    fuzz_data()
    if request.param == "service key":
        account = get_user_model().objects.create_user(username="fuzz-panel")
        account.groups.add(Group.objects.get(name=SERVICE_ACCOUNTS))
        _, key = ServiceAccountKey.objects.create_key(name="fuzz", user=account)
        headers = {"Authorization": f"Api-Key {key}"}
    else:
        owner = get_user_model().objects.create_superuser(username="fuzz", email="fuzz@modready.example", password="x")
        headers = session_headers(owner, TOTPDeviceFactory(user=owner, name="phone", confirmed=True))
    yield headers
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@hypothesis_settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case, api_auth):
    case.call_and_validate(headers=api_auth)
