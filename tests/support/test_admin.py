"""Staff work tickets in the admin: list, filters, actions, metrics, the customer's page."""

from datetime import UTC, datetime, timedelta

import pytest

from support.models import Ticket, TicketStatus
from tests.customers.factories import CustomerFactory
from tests.support.conftest import CUSTOMER_DISCORD_ID, open_ticket
from tests.support.factories import TicketFactory

pytestmark = pytest.mark.django_db


def make_ticket(**fields):
    now = datetime.now(UTC)
    defaults = {"discord_user_id": str(fields.pop("user", 1)), "category": "setup", "status": "closed"}
    ticket = TicketFactory(**{**defaults, **fields})
    Ticket.objects.filter(pk=ticket.pk).update(opened_at=fields.get("opened_at", now - timedelta(hours=5)))
    ticket.refresh_from_db()
    return ticket


def test_support_staff_list_filter_and_search_tickets(client, support_user):
    vip = CustomerFactory(email="vip@example.com", vip_status=True)
    make_ticket(customer=vip, subject="VIP lag", user=1, status="open", claimed_by_name="cxtides")
    make_ticket(subject="Plain question", user=2, category="billing")
    client.force_login(support_user)
    page = client.get("/admin/support/ticket/", {"customer__vip_status__exact": "1"})
    assert page.status_code == 200
    assert "VIP lag" in page.content.decode() and "Plain question" not in page.content.decode()
    found = client.get("/admin/support/ticket/", {"q": "vip@example.com"}).content.decode()
    assert "VIP lag" in found and "Plain question" not in found
    assert client.get("/admin/support/ticket/", {"claimed_by_name": "cxtides"}).status_code == 200


def test_support_staff_cannot_edit_automations(client, support_user):
    client.force_login(support_user)
    assert client.get("/admin/automations/automationrule/add/").status_code == 403


def test_close_action_from_the_admin(discord, send, admin_client, django_capture_on_commit_callbacks):
    open_ticket(send)
    ticket = Ticket.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/support/ticket/", {"action": "close_tickets", "_selected_action": [ticket.pk]})
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED and "(admin)" in ticket.closed_by_name
    assert ticket.discord_channel_id not in discord.channels


def test_reopen_action_opens_a_new_channel(discord, send, admin_client, django_capture_on_commit_callbacks):
    open_ticket(send)
    ticket = Ticket.objects.get()
    first_channel = ticket.discord_channel_id
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/support/ticket/", {"action": "close_tickets", "_selected_action": [ticket.pk]})
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/support/ticket/", {"action": "reopen_tickets", "_selected_action": [ticket.pk]})
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    assert ticket.discord_channel_id and ticket.discord_channel_id != first_channel
    assert ticket.discord_channel_id in discord.channels


def test_metrics_page_medians_per_staff_and_ratings(admin_client):
    now = datetime.now(UTC)
    for minutes, staff, rating, user in ((10, "cxtides", 5, 1), (20, "cxtides", 3, 2), (60, "fonzie1984", None, 3)):
        ticket = make_ticket(user=user, claimed_by_name=staff, rating=rating)
        Ticket.objects.filter(pk=ticket.pk).update(
            first_staff_response_at=ticket.opened_at + timedelta(minutes=minutes),
            closed_at=ticket.opened_at + timedelta(minutes=minutes * 2),
        )
    make_ticket(user=4, status="open", category="billing")
    make_ticket(user=5, opened_at=now - timedelta(days=90), claimed_by_name="old")  # outside the range
    page = admin_client.get("/admin/support/ticket/metrics/")
    assert page.status_code == 200
    metrics = page.context["metrics"]
    assert dict(metrics["open_by_category"])["Billing"] == 1
    assert metrics["tickets"] == 4
    assert metrics["median_first_response_minutes"] == 20.0
    assert metrics["median_resolution_minutes"] == 40.0
    assert metrics["ratings"]["average"] == 4.0
    staff = {row["name"]: row for row in metrics["staff"]}
    assert set(staff) == {"cxtides", "fonzie1984"}
    assert staff["cxtides"]["median_first_response_minutes"] == 15.0 and staff["cxtides"]["average_rating"] == 4.0
    older = admin_client.get("/admin/support/ticket/metrics/", {"since": (now - timedelta(days=100)).date()})
    assert older.context["metrics"]["tickets"] == 5


def test_customer_page_lists_their_tickets(admin_client):
    customer = CustomerFactory(discord_user_id=CUSTOMER_DISCORD_ID)
    make_ticket(customer=customer, subject="Where is my invoice")
    make_ticket(subject="Someone else's", user=2)
    page = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/")
    assert page.status_code == 200 and "Where is my invoice" in page.content.decode()
    theirs = admin_client.get(f"/admin/support/ticket/?customer__id__exact={customer.pk}")
    assert theirs.status_code == 200
    assert "Where is my invoice" in theirs.content.decode() and "Someone else" not in theirs.content.decode()


def test_transcript_needs_admin_access(client, support_user, marketing_user):
    ticket = make_ticket(transcript_html="<p>hello</p>")
    client.force_login(marketing_user)
    assert client.get(f"/admin/support/ticket/{ticket.pk}/transcript/").status_code == 403
    client.force_login(support_user)
    assert client.get(f"/admin/support/ticket/{ticket.pk}/transcript/").content == b"<p>hello</p>"
