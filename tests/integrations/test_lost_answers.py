"""Calls that acted but whose answer was lost (a dropped connection, a gateway's 504): the retry never acts twice.

Discord's invite POST is found again by listing the channel's invites; a Mautic email send is never repeated (the run
stops for staff review); an EspoCRM lead and a Shopware code are looked up before they are created again.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from customers.models import Customer
from devtools.fakes.discord import interactions as discord_fake
from devtools.fakes.server import FakeResponse
from devtools.fakes.stripe.objects import stripe_event
from integrations.models import DiscordInvite, InviteState, PromoCode, RunStatus, WorkflowRun
from integrations.runs import run_execute, workflow_runs_due
from integrations.workflows import review
from tests.customers.factories import StaffUserFactory
from tests.integrations.conftest import INVITE_CHANNEL_ID

pytestmark = pytest.mark.django_db

INVITES = r"/api/v10/channels/\d+/invites"
EMAIL_SEND = r"/api/emails/\d+/contact/\d+/send"
VIP_ROLE = "1700000000000000001"


def invite_posts(fakes):
    return fakes.discord.requests_to("POST", INVITES)


def invite_lists(fakes):
    return fakes.discord.requests_to("GET", INVITES)


# --- Discord: the invite POST acted, its answer was lost ---------------------------------------------------------


@pytest.mark.parametrize("lost", [None, 504], ids=["connection-dropped", "gateway-504"])
def test_a_lost_invite_answer_is_found_again_and_no_second_invite_is_made(fakes, deliver_mautic, lost):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
    fakes.discord.lose_answer_next("POST", INVITES, status=lost)

    deliver_mautic(fakes.mautic.webhook_body([contact_id]))

    run = WorkflowRun.objects.get()
    assert run.status == RunStatus.FAILED and "discord" in run.last_error
    assert len(fakes.discord.invites) == 1  # Discord made it; we never saw the answer
    assert DiscordInvite.objects.get().state == InviteState.REQUESTING
    assert fakes.mautic.edits == [] and fakes.mautic.sent_emails == []

    assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED

    [code] = fakes.discord.invites
    assert len(invite_posts(fakes)) == 1 and len(invite_lists(fakes)) == 1
    invite = DiscordInvite.objects.get()
    assert (invite.code, invite.state) == (code, InviteState.EMAILED)
    assert fakes.mautic.contact(contact_id)["discord_invite_link_basic"] == f"https://discord.gg/{code}"
    assert Customer.objects.get(email="ada@example.com").discord_invite_link_basic == f"https://discord.gg/{code}"
    assert fakes.mautic.sent_emails == [("12", contact_id)]
    assert "adopted" in run.steps.get(name="discord.invite_check").detail


def test_a_listing_without_a_match_creates_exactly_one_invite(fakes, deliver_mautic):
    """The POST never reached Discord (a 503 before it acted); the channel holds only invites that are not ours."""
    contact_id = fakes.mautic.add_contact(email="vip@example.com", opt_in_confirmed=True, vip_status=True)
    fakes.discord.fail_next(503)  # the invite POST, answered before Discord did anything
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    run = WorkflowRun.objects.get()
    assert run.status == RunStatus.FAILED and fakes.discord.invites == {}
    bot = {"id": discord_fake.APPLICATION_ID, "username": "ModReady", "bot": True}
    long_ago = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    decoys = {
        fakes.discord.add_invite(INVITE_CHANNEL_ID, role_ids=[VIP_ROLE]),  # staff's own single-use invite
        fakes.discord.add_invite(INVITE_CHANNEL_ID, role_ids=[VIP_ROLE], inviter=bot, created_at=long_ago),
        fakes.discord.add_invite(INVITE_CHANNEL_ID, role_ids=[VIP_ROLE], inviter=bot, max_uses=0),
        fakes.discord.add_invite(INVITE_CHANNEL_ID, role_ids=[], inviter=bot),  # a Basic one
        fakes.discord.add_invite("1600000000000000999", role_ids=[VIP_ROLE], inviter=bot),  # another channel
    }

    assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED

    assert len(invite_lists(fakes)) == 1 and len(invite_posts(fakes)) == 2  # the refused one, then ours
    [new] = set(fakes.discord.invites) - decoys
    assert fakes.discord.invites[new]["role_ids"] == [VIP_ROLE]
    assert DiscordInvite.objects.get().code == new
    assert fakes.mautic.contact(contact_id)["discord_invite_link_vip"] == f"https://discord.gg/{new}"
    assert "creating one" in run.steps.get(name="discord.invite_check").detail


def test_an_invite_already_ours_is_never_adopted_for_another_contact(fakes, deliver_mautic):
    first = fakes.mautic.add_contact(email="first@example.com", opt_in_confirmed=True)
    second = fakes.mautic.add_contact(email="second@example.com", opt_in_confirmed=True)
    fakes.discord.fail_next(503)  # the second's POST: nothing made
    deliver_mautic(fakes.mautic.webhook_body([second]))
    deliver_mautic(fakes.mautic.webhook_body([first]))  # made after the second's request, the same shape
    run = WorkflowRun.objects.get(subject=f"mautic-contact:{second}")
    assert run.status == RunStatus.FAILED and len(fakes.discord.invites) == 1

    assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED

    links = {fakes.mautic.contact(c)["discord_invite_link_basic"] for c in (first, second)}
    assert len(links) == 2 and len(fakes.discord.invites) == 2  # the first's invite stays the first's


def test_a_refused_invite_leaves_nothing_to_look_for(fakes, deliver_mautic):
    fakes.discord.invite_limit = 0
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    run = WorkflowRun.objects.get()
    assert run.status == RunStatus.FAILED and "1,000 invites" in run.last_error
    assert DiscordInvite.objects.count() == 0

    fakes.discord.invite_limit = 1000
    assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED
    assert invite_lists(fakes) == [] and len(fakes.discord.invites) == 1


# --- Mautic: the email send acted, its answer was lost -----------------------------------------------------------


def test_a_lost_email_send_is_not_repeated_and_asks_staff(fakes, deliver_mautic, django_capture_on_commit_callbacks):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
    fakes.mautic.lose_answer_next("POST", EMAIL_SEND)  # Mautic sends it, then the connection drops

    deliver_mautic(fakes.mautic.webhook_body([contact_id]))

    run = WorkflowRun.objects.get()
    assert run.status == RunStatus.FAILED and fakes.mautic.sent_emails == [("12", contact_id)]
    assert run_execute(run_id=run.pk) == RunStatus.NEEDS_REVIEW

    run.refresh_from_db()
    assert fakes.mautic.sent_emails == [("12", contact_id)]  # not a second time
    step = run.steps.get(name="mautic.invite_email")
    assert step.outcome == "needs_review" and "may have sent it" in step.error
    assert "email history in Mautic" in run.last_error and run.finished_at is not None
    assert workflow_runs_due(now=datetime.now(UTC) + timedelta(days=1)) == []  # not retried by itself
    customer = Customer.objects.get(email="ada@example.com")
    event = customer.timeline_events.filter(kind="workflow.contact_invite.mautic.invite_email").order_by("-id")[0]
    assert "needs_review" in event.summary and "may have sent it" in event.summary
    assert fakes.espocrm.leads == {}

    # Staff see it in the admin, check Mautic, and record that it was sent: the run goes on to the lead.
    client = _staff_client()
    page = client.get(reverse("admin:integrations_workflowrun_change", args=[run.pk]))
    assert b"Needs staff review" in page.content and b"may have sent it" in page.content
    invite = DiscordInvite.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:integrations_discordinvite_changelist"),
            {"action": "email_was_sent", "_selected_action": [invite.pk]},
        )
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert DiscordInvite.objects.get().state == InviteState.EMAILED
    assert fakes.mautic.sent_emails == [("12", contact_id)] and len(fakes.espocrm.leads_for("ada@example.com")) == 1


def test_a_send_staff_found_missing_is_sent_once_more(fakes, deliver_mautic, django_capture_on_commit_callbacks):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
    original = fakes.mautic._handle
    gateway = {"on": True}

    def gateway_timeout(request):  # the proxy in front of Mautic gives up before Mautic sends
        if gateway["on"] and request.method == "POST" and "/send" in request.path:
            return FakeResponse(504, fakes.mautic.error_body(504))
        return original(request)

    fakes.mautic._handle = gateway_timeout
    try:
        deliver_mautic(fakes.mautic.webhook_body([contact_id]))
        run = WorkflowRun.objects.get()
        assert run_execute(run_id=run.pk) == RunStatus.NEEDS_REVIEW
    finally:
        gateway["on"] = False
        fakes.mautic._handle = original
    assert fakes.mautic.sent_emails == []

    with django_capture_on_commit_callbacks(execute=True):
        assert review.invite_email_resolve(invite_ids=[DiscordInvite.objects.get().pk], sent=False) == 1

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert fakes.mautic.sent_emails == [("12", contact_id)]
    assert len(fakes.discord.invites) == 1


def test_a_send_mautic_refused_is_simply_retried(fakes, deliver_mautic):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
    fakes.mautic.email_fail_next()  # 200 {"success": false}: certainly not sent
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    run = WorkflowRun.objects.get()
    assert DiscordInvite.objects.get().email_requested_at is None

    assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED
    assert fakes.mautic.sent_emails == [("12", contact_id)]


def test_a_lost_coupon_email_is_not_repeated(fakes, fake_stripe, settings, deliver, django_capture_on_commit_callbacks):
    buyer = fake_stripe.add_customer(email="buyer@example.com", name="Bea Buyer")
    product = fake_stripe.add_product(name="VIP reservation", modready=False)
    settings.STRIPE_VIP_RESERVATION_PRODUCT_ID = product["id"]
    price = fake_stripe.add_price(product=product, unit_amount=2500)
    session = fake_stripe.add_checkout_session(customer=buyer, prices=[price], mode="payment", payment_status="paid")
    fakes.mautic.lose_answer_next("POST", EMAIL_SEND, status=504)

    deliver(stripe_event("checkout.session.completed", session))

    run = WorkflowRun.objects.get(kind="vip_coupon")
    assert run.status == RunStatus.FAILED and len(fakes.mautic.sent_emails) == 1
    assert run_execute(run_id=run.pk) == RunStatus.NEEDS_REVIEW
    assert len(fakes.mautic.sent_emails) == 1
    assert run.steps.get(name="mautic.coupon_email").outcome == "needs_review"

    with django_capture_on_commit_callbacks(execute=True):
        assert review.coupon_email_resolve(promo_ids=[PromoCode.objects.get().pk], sent=True) == 1
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and len(fakes.mautic.sent_emails) == 1
    assert Customer.objects.get(email="buyer@example.com").promo_code == PromoCode.objects.get().code


# --- EspoCRM and Shopware: looked up before they are created again -----------------------------------------------


@pytest.mark.parametrize("search_misses", [False, True], ids=["found-by-search", "found-by-409"])
def test_a_lost_lead_create_answer_does_not_make_a_second_lead(fakes, deliver_mautic, search_misses):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
    fakes.espocrm.lose_answer_next("POST", r"/api/v1/Lead")

    deliver_mautic(fakes.mautic.webhook_body([contact_id]))

    run = WorkflowRun.objects.get()
    assert run.status == RunStatus.FAILED and "lead.create" in run.last_error
    [lead] = fakes.espocrm.leads_for("ada@example.com")
    fakes.espocrm.search_misses = search_misses  # a lagging index: the create then meets the 409

    assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED

    assert fakes.espocrm.leads_for("ada@example.com") == [lead]
    assert Customer.objects.get(email="ada@example.com").espocrm_lead_id == lead["id"]
    assert len(fakes.mautic.sent_emails) == 1 and len(fakes.discord.invites) == 1


def test_a_shopware_504_after_creating_does_not_make_a_second_code(fakes, fake_stripe, settings, deliver):
    buyer = fake_stripe.add_customer(email="buyer@example.com", name="Bea Buyer")
    product = fake_stripe.add_product(name="VIP reservation", modready=False)
    settings.STRIPE_VIP_RESERVATION_PRODUCT_ID = product["id"]
    price = fake_stripe.add_price(product=product, unit_amount=2500)
    session = fake_stripe.add_checkout_session(customer=buyer, prices=[price], mode="payment", payment_status="paid")
    fakes.shopware.lose_answer_next("POST", r"/api/promotion-individual-code", status=504)

    deliver(stripe_event("checkout.session.completed", session))
    run = WorkflowRun.objects.get(kind="vip_coupon")
    assert run.status == RunStatus.FAILED and fakes.mautic.requests == []

    assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED
    assert [c["code"] for c in fakes.shopware.codes.values()] == [PromoCode.objects.get().code]
    assert len(fakes.shopware.requests_to("POST", r"/api/promotion-individual-code")) == 1


def _staff_client():
    from django.test import Client

    client = Client()
    client.force_login(StaffUserFactory(is_superuser=True))
    return client
