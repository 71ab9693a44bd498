"""Schema-driven fuzzing with schemathesis, in process (the WSGI app, through pytest-django's test database).

Every operation of the generated OpenAPI schema gets generated requests, valid and invalid, and every response goes
through all of schemathesis's checks: no 5xx, status codes, content types, headers and bodies as the schema documents
them, invalid input refused, valid input accepted. max_examples stays small so CI time stays modest; set
SCHEMATHESIS_EXAMPLES for a deeper run.

The schema is built at collection from drf-spectacular's generator (the same document /api/schema/ serves; the test
in test_auth.py fetches that endpoint). schemathesis's lazy `from_fixture` loader does not run on pytest 9.
"""

import json
import os

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core import signals
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from api.models import ServiceAccountKey
from api.throttling import PrincipalRateThrottle
from config.wsgi import application
from integrations.models import WorkflowRun, WorkflowStep
from support.models import Ticket, TicketAttachment, TicketMessage
from tests.customers.factories import CustomerFactory, TimelineEventFactory

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


@pytest.fixture
def api_auth(db, monkeypatch):
    monkeypatch.setattr(PrincipalRateThrottle, "THROTTLE_RATES", {"principal": "100000/min"})
    # Requests go straight to the WSGI app: keep Django from closing the test transaction's connection at the end of
    # each request, as django.test.Client does.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    owner = get_user_model().objects.create_superuser(username="fuzz", email="fuzz@modready.example", password="x")
    _, key = ServiceAccountKey.objects.create_key(name="fuzz", user=owner)
    customer = CustomerFactory()
    TimelineEventFactory.create_batch(3, customer=customer)
    # A row of each resource with nullable parts both ways, so list answers are checked against the schema too.
    now = timezone.now()
    ticket = Ticket.objects.create(customer=customer, discord_user_id="1", subject="Lag", status="closed")
    Ticket.objects.create(discord_user_id="2", subject="Unlinked")
    message = TicketMessage.objects.create(
        ticket=ticket, discord_message_id="10", author_id="1", author_name="alex", content="hi", sent_at=now
    )
    TicketAttachment.objects.create(message=message, discord_attachment_id="20", filename="a.log", data=b"x")
    TicketAttachment.objects.create(message=message, discord_attachment_id="21", filename="b.zip", too_large=True)
    run = WorkflowRun.objects.create(kind="contact_invite", key="fuzz", subject="mautic-contact:1", customer=customer)
    WorkflowRun.objects.create(kind="vip_coupon", key="fuzz-2", subject="cs_test_1", status="failed")
    WorkflowStep.objects.create(run=run, name="mautic.read", outcome="ok", started_at=now, finished_at=now)
    yield {"Authorization": f"Api-Key {key}"}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@hypothesis_settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case, api_auth):
    case.call_and_validate(headers=api_auth)
