"""Consent and suppression, one-click unsubscribe, and Resend's tracking webhook coming back."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from automations.models import EmailEvent, EmailQueueItem, QueueStatus, Suppression, SuppressionReason
from automations.services import suppression_add, unsubscribe_token_make
from tests.billing.factories import SubscriptionFactory
from tests.customers.factories import CustomerFactory
from tests.fakes.resend import resend_event, signed_webhook

from .conftest import make_due, payment_failed_payload, subscription_payload

pytestmark = pytest.mark.django_db

CANCELED = {
    "subscription_id": "sub_1",
    "product_id": "prod_modded",
    "product_name": "Modded",
    "cancellation_reason": "",
}


def win_back_items(customer):
    return EmailQueueItem.objects.filter(customer=customer, enrollment__rule__name="Win-back").order_by("step__order")


def test_marketing_emails_need_opt_in(publish, drain):
    without = CustomerFactory(opt_in_confirmed=False)
    with_consent = CustomerFactory(opt_in_confirmed=True)
    publish("subscription.canceled", without, CANCELED)
    publish("subscription.canceled", with_consent, CANCELED)
    make_due()
    drain()

    assert {i.status for i in win_back_items(without)} == {QueueStatus.SUPPRESSED}
    assert "opt_in_confirmed" in win_back_items(without)[0].last_error
    assert {i.status for i in win_back_items(with_consent)} == {QueueStatus.SENT}
    assert {m.to[0] for m in mail.outbox} == {with_consent.email}


def test_marketing_emails_carry_one_click_unsubscribe_and_transactional_do_not(publish, drain):
    customer = CustomerFactory(opt_in_confirmed=True)
    publish("payment.failed", customer, payment_failed_payload())
    publish("subscription.canceled", customer, CANCELED)
    make_due(EmailQueueItem.objects.filter(step__order=1))
    drain()

    dunning, win_back = sorted(mail.outbox, key=lambda m: "world" in m.subject)
    assert "List-Unsubscribe" not in dunning.extra_headers
    assert win_back.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = win_back.extra_headers["List-Unsubscribe"].strip("<>")
    assert "/email/unsubscribe/" in link
    assert link in win_back.body and link in win_back.alternatives[0][0]
    assert "https://invoice.stripe.com/i/in_1" in dunning.body


def test_suppressed_addresses_get_nothing_and_unsubscribes_still_get_service_emails(publish, drain):
    bounced = CustomerFactory(opt_in_confirmed=True)
    unsubscribed = CustomerFactory(opt_in_confirmed=True)
    suppression_add(email=bounced.email.upper(), reason=SuppressionReason.HARD_BOUNCE)
    suppression_add(email=unsubscribed.email, reason=SuppressionReason.UNSUBSCRIBE)
    for customer in (bounced, unsubscribed):
        publish("payment.failed", customer, payment_failed_payload(subscription_id="sub_old"))
        publish("subscription.canceled", customer, {**CANCELED, "subscription_id": "sub_other"})
    make_due()
    drain()

    assert set(EmailQueueItem.objects.filter(customer=bounced).values_list("status", flat=True)) == {
        QueueStatus.SUPPRESSED
    }
    assert "hard_bounce" in EmailQueueItem.objects.filter(customer=bounced).first().last_error
    assert set(win_back_items(unsubscribed).values_list("status", flat=True)) == {QueueStatus.SUPPRESSED}
    dunning = EmailQueueItem.objects.filter(customer=unsubscribed, enrollment__rule__name="Dunning")
    assert set(dunning.values_list("status", flat=True)) == {QueueStatus.SENT}
    assert len(mail.outbox) == 3
    assert all(m.to == [unsubscribed.email] for m in mail.outbox)


def test_unsubscribe_get_asks_and_post_unsubscribes_without_login(client, customer):
    url = reverse("automations:unsubscribe", args=[unsubscribe_token_make(email=customer.email)])

    page = client.get(url)
    assert page.status_code == 200
    assert b"Unsubscribe from ModReady news?" in page.content
    assert not Suppression.objects.exists()  # link scanners GET every link

    done = client.post(url)  # RFC 8058 one-click: no CSRF token, no session
    assert done.status_code == 200
    assert b"You are unsubscribed" in done.content
    assert Suppression.objects.get().reason == SuppressionReason.UNSUBSCRIBE
    assert customer.timeline_events.get(kind="email.unsubscribed").summary == "Unsubscribed from marketing emails"

    client.post(url)
    assert Suppression.objects.count() == 1
    assert customer.timeline_events.filter(kind="email.unsubscribed").count() == 1


def test_unsubscribe_with_a_tampered_token_changes_nothing(client, customer):
    token = unsubscribe_token_make(email=customer.email)
    response = client.post(reverse("automations:unsubscribe", args=[token[:-2] + "xx"]))
    assert response.status_code == 400
    assert not Suppression.objects.exists()


def test_unsubscribe_from_an_email_counts_for_that_email(publish, drain, client):
    customer = CustomerFactory(opt_in_confirmed=True)
    publish("subscription.canceled", customer, CANCELED)
    make_due()
    drain()
    link = mail.outbox[0].extra_headers["List-Unsubscribe"].strip("<>")
    client.post(link.removeprefix("http://127.0.0.1:8000"))
    item = win_back_items(customer)[0]
    assert item.unsubscribed_at is not None
    assert Suppression.objects.get().queue_item == item


# --- tracking ----------------------------------------------------------------------------------------------------


@pytest.fixture
def sent_item(resend, publish):
    customer = CustomerFactory()
    publish("subscription.created", customer, subscription_payload())
    item = EmailQueueItem.objects.get(customer=customer, step__order=1)
    assert item.status == QueueStatus.SENT and item.provider_message_id
    return item


def iso(moment):
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_tracking_events_are_stored_once_and_put_on_the_timeline(client, sent_item):
    delivered_at = timezone.now()
    payload = resend_event(
        "email.delivered", email_id=sent_item.provider_message_id, to=sent_item.recipient, created_at=iso(delivered_at)
    )
    assert signed_webhook(client, payload, msg_id="msg_1").status_code == 200
    assert signed_webhook(client, payload, msg_id="msg_1").status_code == 200  # Svix retries

    event = EmailEvent.objects.get()
    assert (event.type, event.queue_item) == ("delivered", sent_item)
    sent_item.refresh_from_db()
    assert sent_item.delivered_at is not None
    assert sent_item.customer.timeline_events.filter(kind="email.delivered").count() == 1


def test_a_bad_signature_is_refused(client, sent_item):
    payload = resend_event(
        "email.bounced", email_id=sent_item.provider_message_id, to=sent_item.recipient, created_at=iso(timezone.now())
    )
    response = signed_webhook(client, payload, msg_id="msg_2", secret="whsec_" + "QUJD" * 8)
    assert response.status_code == 400
    assert not EmailEvent.objects.exists()
    assert not Suppression.objects.exists()


def test_hard_bounces_and_complaints_suppress_the_address(client, sent_item):
    for msg_id, kind in (("m1", "email.bounced"), ("m2", "email.complained")):
        payload = resend_event(
            kind, email_id=sent_item.provider_message_id, to=sent_item.recipient, created_at=iso(timezone.now())
        )
        assert signed_webhook(client, payload, msg_id=msg_id).status_code == 200
    assert set(Suppression.objects.values_list("email", "reason")) == {
        (sent_item.recipient, SuppressionReason.HARD_BOUNCE),
        (sent_item.recipient, SuppressionReason.COMPLAINT),
    }
    sent_item.refresh_from_db()
    assert sent_item.bounced_at and sent_item.complained_at


def test_machine_opens_are_flagged_and_human_opens_counted(client, sent_item):
    delivered = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    message_id, to = sent_item.provider_message_id, sent_item.recipient
    signed_webhook(
        client, resend_event("email.delivered", email_id=message_id, to=to, created_at=iso(delivered)), msg_id="d"
    )
    # Within seconds of delivery: a privacy proxy prefetching images, not a person.
    signed_webhook(
        client,
        resend_event("email.opened", email_id=message_id, to=to, created_at=iso(delivered + timedelta(seconds=2))),
        msg_id="o1",
    )
    sent_item.refresh_from_db()
    assert sent_item.opened_at is not None and sent_item.human_opened_at is None

    later = delivered + timedelta(hours=3)
    signed_webhook(client, resend_event("email.opened", email_id=message_id, to=to, created_at=iso(later)), msg_id="o2")
    signed_webhook(
        client,
        resend_event(
            "email.clicked",
            email_id=message_id,
            to=to,
            created_at=iso(later),
            click_url="https://panel.modready.example",
            user_agent="Mozilla/5.0 (Windows NT 10.0) Firefox/130.0",
        ),
        msg_id="c1",
    )
    flags = dict(EmailEvent.objects.filter(type="opened").values_list("provider_event_id", "machine_open"))
    assert flags == {"o1": True, "o2": False}
    sent_item.refresh_from_db()
    assert sent_item.human_opened_at == later
    assert sent_item.clicked_at == later
    assert EmailEvent.objects.get(type="clicked").url == "https://panel.modready.example"


def test_known_scanner_user_agents_are_machine_opens():
    from automations.services import is_machine_open

    now = timezone.now()
    assert is_machine_open(user_agent="Mozilla/5.0", opened_at=now, delivered_at=None)
    assert is_machine_open(user_agent="Barracuda Sentinel (EE)", opened_at=now, delivered_at=None)
    assert not is_machine_open(
        user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) via ggpht.com GoogleImageProxy",
        opened_at=now,
        delivered_at=now - timedelta(minutes=5),
    )


def test_an_event_that_beats_our_commit_is_linked_when_the_email_is_recorded(resend):
    from automations.models import EmailBatch
    from automations.sending import DrainResult, batch_claim_new, batch_record_sent, transport_get

    from .test_sending import queue_welcomes

    queue_welcomes(1)
    EmailQueueItem.objects.filter(step__order=2).delete()
    batch, _ = batch_claim_new(worker="w", size=100, result=DrainResult())
    (message_id,) = transport_get().send(
        messages=[e["message"] for e in batch.messages], idempotency_key=batch.provider_idempotency_key
    )
    from automations.services import email_event_record

    email_event_record(
        event_type="delivered", provider_event_id="early", provider_message_id=message_id, occurred_at=timezone.now()
    )
    assert EmailEvent.objects.get().queue_item is None

    batch_record_sent(batch=EmailBatch.objects.get(), message_ids=[message_id], result=DrainResult())
    item = EmailQueueItem.objects.get()
    assert EmailEvent.objects.get().queue_item == item
    assert item.delivered_at is not None
    assert item.customer.timeline_events.filter(kind="email.delivered").exists()


def test_emails_use_the_customers_current_subscription_from_billing(publish, resend):
    customer = CustomerFactory(name="Kim")
    SubscriptionFactory(
        customer=customer,
        stripe_subscription_id="sub_billing",
        product_name="Modpack Server 12 GB",
        amount=2999,
        currency="eur",
        interval="month",
    )
    publish("subscription.created", customer, subscription_payload("sub_billing"))
    text = resend.delivered_to(customer.email)[0].message["text"]
    assert "Modpack Server 12 GB" in text and "€29.99 per month" in text


def test_an_event_that_lost_the_race_is_linked_by_the_next_queue_run(sent_item, drain):
    from automations.services import email_event_record

    # Simulate both sides missing each other: the event is stored unlinked although the email is known.
    event = email_event_record(
        event_type="clicked", provider_event_id="late", provider_message_id="unknown-yet", occurred_at=timezone.now()
    )
    assert event.queue_item is None
    EmailEvent.objects.filter(pk=event.pk).update(provider_message_id=sent_item.provider_message_id)

    drain()

    event.refresh_from_db()
    sent_item.refresh_from_db()
    assert event.queue_item == sent_item
    assert sent_item.clicked_at is not None
