"""The ticket page's additions: a saved reply inserted into the reply box (a plain GET form), and billing actions from
the ticket (card-update link, pause, goodwill credit), each acting once at the fake Stripe under a double submit,
audited on the ticket and posted in it as an internal note."""

import uuid

import pytest

from billing.models import CardUpdateLinkSend, GoodwillCredit
from support.models import SavedReply, Ticket
from support.workspace_models import PostKind, TicketAuditEntry, TicketPost
from tests.automations.conftest import default_flows  # noqa: F401 (fixture)
from tests.billing.conftest import fake_stripe, fake_stripe_server  # noqa: F401 (fixtures)
from tests.billing.factories import SubscriptionFactory
from tests.customers.factories import CustomerFactory
from tests.support.conftest import CUSTOMER_DISCORD_ID, act, open_ticket, page_url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_flows", "fresh_cache")]


@pytest.fixture
def paying(fake_stripe):  # noqa: F811 (fixture)
    """A customer with a Stripe customer and a current subscription, both at the fake Stripe."""
    world = fake_stripe.add_subscription(email="alex@example.com", price=None)
    customer = CustomerFactory(
        discord_user_id=CUSTOMER_DISCORD_ID,
        name="Alex Miner",
        email="alex@example.com",
        stripe_customer_id=world.customer["id"],
    )
    SubscriptionFactory(customer=customer, stripe_subscription_id=world.subscription["id"], currency="eur")
    return customer


@pytest.fixture
def ticket(discord, send, paying):
    open_ticket(send, subject="Card declined")
    return Ticket.objects.get()


def shown(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def notes(ticket) -> list[str]:
    return list(TicketPost.objects.filter(ticket=ticket, kind=PostKind.NOTE).values_list("content", flat=True))


def test_inserting_a_saved_reply_fills_the_reply_box(ticket, staff):
    reply = SavedReply.objects.create(title="Card help", body="Hi {{ customer.first_name }}, update your card here.")
    page = staff.get(page_url(ticket)).content.decode()
    assert 'id="saved-reply-form"' in page and "Card help" in page
    assert 'id="reply-content"></textarea>' in page  # empty until a reply is chosen

    filled = staff.get(page_url(ticket), {"saved_reply": reply.pk}).content.decode()
    assert 'id="reply-content">Hi Alex, update your card here.</textarea>' in filled
    assert not TicketPost.objects.exists()  # inserting sends nothing: the reply button does
    unknown = staff.get(page_url(ticket), {"saved_reply": "999999"}).content.decode()
    assert 'id="reply-content"></textarea>' in unknown


def test_the_card_update_link_is_sent_once_audited_and_noted(ticket, staff, run_on_commit):
    page = staff.get(page_url(ticket)).content.decode()
    assert 'id="billing-actions"' in page and "Email the card-update link" in page
    form = {"token": uuid.uuid4().hex}
    first = act(staff, ticket, "card_update_link", form, run_on_commit=run_on_commit)
    second = act(staff, ticket, "card_update_link", form, run_on_commit=run_on_commit)
    assert first.status_code == second.status_code == 302
    assert CardUpdateLinkSend.objects.filter(customer=ticket.customer).count() == 1
    assert [e.action for e in TicketAuditEntry.objects.filter(ticket=ticket)] == ["card_update_link"]
    assert notes(ticket) == ["Sam Rivera sent the card-update link to alex@example.com"]
    assert any("nothing was done again" in m for m in shown(second))
    html = staff.get(page_url(ticket)).content.decode()
    assert "Sam Rivera sent the card-update link" in html


def test_a_pause_reaches_stripe_once_under_a_double_submit(ticket, staff, fake_stripe, run_on_commit):  # noqa: F811
    form = {"months": "2", "token": uuid.uuid4().hex}
    act(staff, ticket, "pause", form, run_on_commit=run_on_commit)
    act(staff, ticket, "pause", form, run_on_commit=run_on_commit)
    [update] = fake_stripe.subscription_updates
    assert update["idempotency_key"] == f"ticket:{ticket.pk}:pause:{form['token']}"
    subscription_id = ticket.customer.subscriptions.get().stripe_subscription_id
    assert fake_stripe.get(subscription_id)["pause_collection"]["behavior"] == "void"
    assert [e.action for e in TicketAuditEntry.objects.filter(ticket=ticket)] == ["pause"]
    [note] = notes(ticket)
    assert note.startswith("Sam Rivera paused the subscription for 2 month(s)")


def test_a_goodwill_credit_reaches_stripe_once_and_a_refusal_shows_the_figures(
    ticket,
    staff,
    fake_stripe,  # noqa: F811
    run_on_commit,
    settings,
):
    settings.BILLING_GOODWILL_CREDIT_LIMIT = 1000
    form = {"amount": "5.00", "reason": "Server down on Saturday", "token": uuid.uuid4().hex}
    act(staff, ticket, "goodwill_credit", form, run_on_commit=run_on_commit)
    act(staff, ticket, "goodwill_credit", form, run_on_commit=run_on_commit)
    [balance] = fake_stripe.objects["customer_balance_transactions"].values()
    assert balance["amount"] == -500
    assert GoodwillCredit.objects.get().amount == 500
    assert [e.action for e in TicketAuditEntry.objects.filter(ticket=ticket)] == ["goodwill_credit"]
    [note] = notes(ticket)
    assert "5.00 EUR goodwill on the next invoice: Server down on Saturday" in note

    over = {"amount": "20.00", "reason": "Too generous", "token": uuid.uuid4().hex}
    refused = act(staff, ticket, "goodwill_credit", over, run_on_commit=run_on_commit)
    assert refused.status_code == 302
    [message] = [m for m in shown(refused) if "Nothing was done" in m]
    assert "10.00" in message or "1000" in message  # the limit's figures
    assert len(fake_stripe.objects["customer_balance_transactions"]) == 1
    assert TicketAuditEntry.objects.filter(ticket=ticket).count() == 1


def test_bad_billing_input_is_400_and_changes_nothing(ticket, staff, fake_stripe, run_on_commit):  # noqa: F811
    token = uuid.uuid4().hex
    for action, form in (
        ("pause", {"months": "6", "token": token}),
        ("pause", {"months": "1", "token": "nope"}),
        ("goodwill_credit", {"amount": "-3", "reason": "x", "token": token}),
        ("goodwill_credit", {"amount": "abc", "reason": "x", "token": token}),
        ("card_update_link", {}),
    ):
        assert act(staff, ticket, action, form, run_on_commit=run_on_commit).status_code == 400
    assert fake_stripe.subscription_updates == [] and not fake_stripe.objects["customer_balance_transactions"]
    assert not TicketAuditEntry.objects.exists() and not CardUpdateLinkSend.objects.exists()


def test_marketing_cannot_use_billing_actions(ticket, client, marketing_user, fake_stripe, run_on_commit):  # noqa: F811
    client.force_login(marketing_user)
    for action, form in (
        ("card_update_link", {"token": uuid.uuid4().hex}),
        ("pause", {"months": "1", "token": uuid.uuid4().hex}),
        ("goodwill_credit", {"amount": "1", "reason": "x", "token": uuid.uuid4().hex}),
    ):
        assert act(client, ticket, action, form, run_on_commit=run_on_commit).status_code == 403
    assert fake_stripe.subscription_updates == [] and not CardUpdateLinkSend.objects.exists()


def test_billing_quick_actions_also_need_billings_permission(ticket, client, run_on_commit):
    from django.contrib.auth.models import Permission

    from tests.customers.factories import StaffUserFactory

    ticket_only = StaffUserFactory()
    ticket_only.user_permissions.add(
        Permission.objects.get(codename="change_ticket", content_type__app_label="support"),
        Permission.objects.get(codename="view_ticket", content_type__app_label="support"),
    )
    client.force_login(ticket_only)
    form = {"token": uuid.uuid4().hex}
    assert act(client, ticket, "card_update_link", form, run_on_commit=run_on_commit).status_code == 403
    assert not CardUpdateLinkSend.objects.exists() and not TicketAuditEntry.objects.exists()


def test_a_refused_pause_shows_billings_reason_and_changes_nothing(ticket, staff, fake_stripe, run_on_commit):  # noqa: F811
    ticket.customer.subscriptions.update(cancel_at_period_end=True)
    response = act(staff, ticket, "pause", {"months": "1", "token": uuid.uuid4().hex}, run_on_commit=run_on_commit)
    assert response.status_code == 302
    assert "Nothing was done: The subscription is set to be canceled." in shown(response)
    assert fake_stripe.subscription_updates == []
    assert not TicketAuditEntry.objects.exists() and notes(ticket) == []


def test_a_reply_sent_from_an_inserted_saved_reply_counts_as_one_use(ticket, staff):
    from support.reply_models import SavedReplyUse

    reply = SavedReply.objects.create(title="Card help", body="Hi {{ customer.first_name }}, update your card here.")
    filled = staff.get(page_url(ticket), {"saved_reply": reply.pk}).content.decode()
    assert f'name="saved_reply" value="{reply.pk}"' in filled
    form = {"kind": "reply", "content": "Hi Alex, update your card here. Thanks!", "token": uuid.uuid4().hex}
    for _ in range(2):  # a double click: one reply, one use
        staff.post(f"/admin/support/ticket/{ticket.pk}/act/post/", {**form, "saved_reply": reply.pk})
    use = SavedReplyUse.objects.get()
    assert (use.saved_reply, use.via, use.content) == (reply, "admin", form["content"])  # what staff sent, edited
    staff.post(
        f"/admin/support/ticket/{ticket.pk}/act/post/",
        {**form, "kind": "note", "token": uuid.uuid4().hex, "saved_reply": reply.pk},
    )
    assert SavedReplyUse.objects.count() == 1  # an internal note is not a use
