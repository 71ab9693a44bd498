"""/api/v1/tickets/: support tickets, filtered, and one ticket with its transcript."""

from datetime import timedelta
from itertools import count

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from support.models import Ticket, TicketMessage
from tests.api.conftest import ids, query_counts, session_client, without_shared_cache_queries
from tests.customers.factories import CustomerFactory, StaffUserFactory
from tests.support.factories import TicketAttachmentFactory, TicketFactory, TicketMessageFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/tickets/"
_discord_ids = count(1_800_000_000_000_000_000)


def ticket(**fields) -> Ticket:
    fields.setdefault("discord_user_id", str(next(_discord_ids)))
    fields.setdefault("status", "open")
    fields.setdefault("interaction_token", "secret-interaction-token")
    fields.setdefault("transcript_html", "<html>rendered transcript</html>")
    return TicketFactory(**fields)


def message(ticket_, n: int, **fields) -> TicketMessage:
    return TicketMessageFactory(
        ticket=ticket_,
        discord_message_id=f"{ticket_.pk}{n:04d}",
        author_id=fields.pop("author_id", "1700000000000000001"),
        author_name=fields.pop("author_name", "alex"),
        sent_at=fields.pop("sent_at", timezone.now()),
        **fields,
    )


def test_list_newest_first_and_filtered(key_client):
    vip = CustomerFactory(vip_status=True)
    regular = CustomerFactory(vip_status=False)
    old = ticket(customer=regular, category="billing", status="closed")
    Ticket.objects.filter(pk=old.pk).update(opened_at=timezone.now() - timedelta(days=10))
    claimed = ticket(customer=vip, category="technical", priority="high", claimed_by_name="Sam")
    unlinked = ticket(category="setup", contact_email="who@example.com")

    assert ids(key_client.get(URL)) == [unlinked.pk, claimed.pk, old.pk]
    assert ids(key_client.get(URL, {"status": "closed"})) == [old.pk]
    assert ids(key_client.get(URL, {"status": ["open", "closed"], "category": "technical"})) == [claimed.pk]
    assert ids(key_client.get(URL, {"priority": "high"})) == [claimed.pk]
    assert ids(key_client.get(URL, {"claimed_by": "Sam"})) == [claimed.pk]
    assert ids(key_client.get(URL, {"claimed": "false"})) == [unlinked.pk, old.pk]
    assert ids(key_client.get(URL, {"customer": regular.pk})) == [old.pk]
    assert ids(key_client.get(URL, {"vip": "true"})) == [claimed.pk]
    # Not a VIP includes the tickets no customer is linked to.
    assert ids(key_client.get(URL, {"vip": "false"})) == [unlinked.pk, old.pk]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(key_client.get(URL, {"opened_since": since})) == [unlinked.pk, claimed.pk]

    row = key_client.get(URL, {"customer": vip.pk}).json()["results"][0]
    assert (row["customer_email"], row["customer_vip"], row["claimed_by_name"]) == (vip.email, True, "Sam")
    assert "interaction_token" not in row and "transcript_html" not in row and "messages" not in row


def test_bad_filter_values_are_refused(key_client):
    for params in ({"status": "solved"}, {"vip": "yes"}, {"opened_since": "last week"}, {"claimed": ""}):
        response = key_client.get(URL, params)
        assert response.status_code == 400, params
        assert response.json()["type"] == "validation_error"


def test_detail_has_the_transcript_with_attachment_metadata(key_client):
    customer = CustomerFactory()
    t = ticket(customer=customer, subject="Server crashes", description="It crashes on start", status="closed")
    start = timezone.now() - timedelta(hours=1)
    question = message(t, 1, content="It crashes on start, log attached", sent_at=start)
    answer = message(
        t, 2, author_id="1600000000000000001", author_name="Sam", content="Fixed.", sent_at=start + timedelta(minutes=5)
    )
    TicketAttachmentFactory(
        message=question,
        discord_attachment_id="9001",
        filename="latest.log",
        content_type="text/plain",
        size=11,
        data=b"stack trace",
    )
    TicketAttachmentFactory(
        message=question, discord_attachment_id="9002", filename="world.zip", size=10**9, too_large=True
    )

    response = key_client.get(f"{URL}{t.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert (body["subject"], body["description"], body["customer_email"]) == (
        "Server crashes",
        "It crashes on start",
        customer.email,
    )
    assert "interaction_token" not in body and "transcript_html" not in body
    assert [(m["id"], m["author_name"], m["content"]) for m in body["messages"]] == [
        (question.pk, "alex", "It crashes on start, log attached"),
        (answer.pk, "Sam", "Fixed."),
    ]
    log, world = body["messages"][0]["attachments"]
    assert log == {
        "id": "9001",
        "filename": "latest.log",
        "content_type": "text/plain",
        "size": 11,
        "too_large": False,
        "download_url": f"http://testserver/admin/support/ticket/{t.pk}/attachment/9001/",
    }
    assert world["too_large"] is True and world["download_url"] is None
    assert body["messages"][1]["attachments"] == []

    # The link is the admin's: an admin session downloads the bytes, which the API itself never returns.
    assert b"stack trace" not in response.content
    admin = session_client(StaffUserFactory(is_superuser=True))
    download = admin.get(log["download_url"])
    assert download.status_code == 200 and download.content == b"stack trace"


def test_list_query_count_does_not_grow_with_page_size(key_client):
    for _ in range(50):
        ticket(customer=CustomerFactory())
    # key + service account, the account's permissions (one query), the page with its customers
    assert query_counts(key_client, URL, (5, 50)) == [3, 3]


def test_detail_query_count_does_not_grow_with_the_transcript(key_client):
    short, long = ticket(), ticket()
    message(short, 1)
    for n in range(30):
        attachment_message = message(long, n)
        TicketAttachmentFactory(
            message=attachment_message, discord_attachment_id=f"a{n}", filename=f"{n}.png", data=b"png"
        )
    key_client.get(URL)
    counts = []
    for t in (short, long):
        with CaptureQueriesContext(connection) as captured:
            assert key_client.get(f"{URL}{t.pk}/").status_code == 200
        counts.append(len(without_shared_cache_queries([query["sql"] for query in captured])))
    # key, permissions, the ticket, its messages, their attachments
    assert counts == [5, 5]
