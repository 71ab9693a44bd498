"""Consent and suppression, one-click unsubscribe, and Resend's tracking webhook coming back."""

import base64
import binascii
import contextlib
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest
from django.core import mail, signing
from django.urls import reverse
from django.utils import timezone

from automations.models import EmailEvent, EmailQueueItem, QueueStatus, Suppression, SuppressionReason
from automations.services.suppressions import suppression_add, unsubscribe_token_make, unsubscribe_url
from devtools.fakes.resend import resend_event, signed_webhook
from tests.billing.factories import SubscriptionFactory
from tests.customers.factories import CustomerFactory

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
    assert "no marketing consent" in win_back_items(without)[0].last_error  # was the field's name before issue 18
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
    # Said in words since issue 18 (it was the code "hard_bounce").
    assert "hard-bounced" in EmailQueueItem.objects.filter(customer=bounced).first().last_error
    assert set(win_back_items(unsubscribed).values_list("status", flat=True)) == {QueueStatus.SUPPRESSED}
    dunning = EmailQueueItem.objects.filter(customer=unsubscribed, enrollment__rule__name="Dunning")
    assert set(dunning.values_list("status", flat=True)) == {QueueStatus.SENT}
    assert len(mail.outbox) == 3
    assert all(m.to == [unsubscribed.email] for m in mail.outbox)


def queued_item(publish, customer=None):
    """A queue item (an email) for a customer, as the queue would have made it."""
    customer = customer or CustomerFactory(opt_in_confirmed=True)
    publish("subscription.canceled", customer, CANCELED)
    return win_back_items(customer)[0]


def test_unsubscribe_get_asks_and_post_unsubscribes_without_login(client, publish):
    item = queued_item(publish)
    customer = item.customer
    url = reverse("automations:unsubscribe", args=[unsubscribe_token_make(queue_item_id=item.pk)])

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


def test_unsubscribe_with_a_tampered_token_changes_nothing(client, publish):
    item = queued_item(publish)
    token = unsubscribe_token_make(queue_item_id=item.pk)
    other = queued_item(publish)
    forged = signing.b62_encode(other.pk) + token[token.index(":") :]  # another email's id under this signature
    for bad in (token[:-2] + "xx", forged, "preview", "no-colon", ":", "a:b:c", "\u00e9:\u00e9"):
        response = client.post(reverse("automations:unsubscribe", args=[bad]))
        assert response.status_code == 400, bad
    assert not Suppression.objects.exists()


def test_the_unsubscribe_link_in_an_email_carries_no_address(publish, drain):
    customer = CustomerFactory(opt_in_confirmed=True, email="Private.Person@example.com")
    publish("subscription.canceled", customer, CANCELED)
    make_due()
    drain()
    link = mail.outbox[0].extra_headers["List-Unsubscribe"].strip("<>")
    token = link.rsplit("/", 1)[1]
    readable = {token, unquote(token)}
    for part in unquote(token).replace(":", ".").split("."):
        for candidate in (part, part + "=" * (-len(part) % 4)):
            with contextlib.suppress(binascii.Error, ValueError):
                readable.add(base64.urlsafe_b64decode(candidate).decode("latin-1"))
    # Neither the token nor any base64 reading of its parts holds the address or a piece of it.
    assert not any(piece in text.lower() for text in readable for piece in ("private.person", "example.com"))
    assert "@" not in unquote(token)
    # The same email rendered again (a batch re-sent under its key) carries the same link.
    item = win_back_items(customer)[0]
    assert unsubscribe_url(queue_item_id=item.pk) == link


def test_an_unsubscribe_link_sent_before_the_opaque_tokens_still_works(client, publish):
    item = queued_item(publish)
    old_token = signing.dumps({"e": item.recipient, "q": item.pk}, salt="automations.unsubscribe", compress=True)
    assert client.post(reverse("automations:unsubscribe", args=[old_token])).status_code == 200
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.queue_item) == (item.recipient, item)


def test_links_survive_a_secret_key_rotation_while_the_old_key_is_a_fallback(client, publish, settings):
    item = queued_item(publish)
    settings.SECRET_KEY = "old-key-" + "x" * 50
    url = reverse("automations:unsubscribe", args=[unsubscribe_token_make(queue_item_id=item.pk)])

    settings.SECRET_KEY = "new-key-" + "y" * 50
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(url).status_code == 400  # rotated without the fallback: every sent link is dead

    settings.SECRET_KEY_FALLBACKS = ["old-key-" + "x" * 50]
    assert client.get(url).status_code == 200
    assert client.post(url).status_code == 200
    assert Suppression.objects.get().email == item.recipient
    # New links are signed with the new key only.
    assert unsubscribe_token_make(queue_item_id=item.pk) != url.rsplit("/", 1)[1]


def test_a_preview_link_unsubscribes_nobody(client, customer):
    link = unsubscribe_url(email=customer.email)
    assert customer.email not in link
    assert client.post(link.removeprefix("http://127.0.0.1:8000")).status_code == 400
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


def test_an_open_is_judged_by_timing_alone_whatever_the_user_agent():
    from automations.services.tracking import is_machine_open

    # Resend's opens carry no user agent; only the time since delivery can mark a machine open.
    delivered = timezone.now()
    assert is_machine_open(opened_at=delivered + timedelta(seconds=2), delivered_at=delivered)
    assert not is_machine_open(opened_at=delivered + timedelta(minutes=5), delivered_at=delivered)
    assert not is_machine_open(opened_at=delivered, delivered_at=None)


TRANSIENT = {"message": "The recipient's inbox is full.", "type": "Transient", "subType": "MailboxFull"}


def bounce(client, *, email_id, to, msg_id, kind=TRANSIENT, at=None):
    payload = resend_event(
        "email.bounced", email_id=email_id, to=to, created_at=iso(at or timezone.now()), bounce=dict(kind)
    )
    response = signed_webhook(client, payload, msg_id=msg_id)
    assert response.status_code == 200
    return response


def test_a_transient_bounce_is_recorded_on_the_email_and_timeline_and_suppresses_nothing(
    client, sent_item, marketing_user
):
    bounce(client, email_id=sent_item.provider_message_id, to=sent_item.recipient, msg_id="soft_1")

    assert not Suppression.objects.exists()
    sent_item.refresh_from_db()
    assert sent_item.bounced_at is None and sent_item.soft_bounced_at is not None
    assert "transient" in sent_item.delivery_problem and "MailboxFull" in sent_item.delivery_problem
    timeline = sent_item.customer.timeline_events.get(kind="email.bounced")
    assert "bounced (transient): not suppressed" in timeline.summary
    assert EmailEvent.objects.get().bounce_type == "Transient"
    # Staff see it on the email in the admin.
    client.force_login(marketing_user)
    page = client.get(reverse("admin:automations_emailqueueitem_change", args=[sent_item.pk])).content.decode()
    assert "The recipient&#x27;s inbox is full." in page and "Soft bounced at" in page


def test_a_permanent_bounce_suppresses_the_address(client, sent_item):
    bounce(
        client,
        email_id=sent_item.provider_message_id,
        to=sent_item.recipient,
        msg_id="hard_1",
        kind={"message": "The recipient's email address does not exist.", "type": "Permanent", "subType": "General"},
    )
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.reason) == (sent_item.recipient, SuppressionReason.HARD_BOUNCE)
    sent_item.refresh_from_db()
    assert sent_item.bounced_at is not None and sent_item.soft_bounced_at is None
    assert "address suppressed" in sent_item.customer.timeline_events.get(kind="email.bounced").summary


def test_an_undetermined_bounce_does_not_suppress_alone(client, sent_item):
    undetermined = {"message": "The email bounced.", "type": "Undetermined", "subType": "Undetermined"}
    bounce(client, email_id=sent_item.provider_message_id, to=sent_item.recipient, msg_id="u1", kind=undetermined)
    assert not Suppression.objects.exists()


def test_three_transient_bounces_within_30_days_suppress_the_address(client, resend, publish, drain):
    address = "full.mailbox@example.com"
    now = timezone.now()
    # An old one does not count, and a second event about the same email is one bounced email, not two.
    bounce(client, email_id="em_old", to=address, msg_id="b0", at=now - timedelta(days=31))
    bounce(client, email_id="em_1", to=address, msg_id="b1", at=now - timedelta(days=20))
    bounce(client, email_id="em_1", to=address, msg_id="b1-again", at=now - timedelta(days=20, hours=-1))
    bounce(client, email_id="em_2", to=address.upper(), msg_id="b2", at=now - timedelta(days=3))
    assert not Suppression.objects.exists()

    bounce(client, email_id="em_3", to=address, msg_id="b3")
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.reason) == (address, SuppressionReason.SOFT_BOUNCES)

    # Repeated transient bounces stop service emails too: the address is not receiving mail.
    customer = CustomerFactory(email=address)
    publish("payment.failed", customer, payment_failed_payload())
    make_due()
    drain()
    items = EmailQueueItem.objects.filter(customer=customer)
    assert items.exists()
    assert set(items.values_list("status", flat=True)) == {QueueStatus.SUPPRESSED}
    assert not resend.delivered_to(address)


def test_failed_and_suppressed_by_resend_show_on_the_email_and_in_analytics(client, sent_item, publish):
    from automations.selectors import email_analytics

    other = CustomerFactory()
    publish("subscription.created", other, subscription_payload("sub_2"))
    other_item = EmailQueueItem.objects.get(customer=other, step__order=1)
    now = timezone.now()
    for msg_id, kind, item in (("f1", "email.failed", sent_item), ("s1", "email.suppressed", other_item)):
        payload = resend_event(kind, email_id=item.provider_message_id, to=item.recipient, created_at=iso(now))
        assert signed_webhook(client, payload, msg_id=msg_id).status_code == 200

    sent_item.refresh_from_db()
    other_item.refresh_from_db()
    assert sent_item.failed_at is not None and "reached_daily_quota" in sent_item.delivery_problem
    assert other_item.provider_suppressed_at is not None
    assert "OnAccountSuppressionList" in other_item.delivery_problem
    assert set(EmailEvent.objects.values_list("type", flat=True)) == {"failed", "suppressed"}
    assert sent_item.customer.timeline_events.get(kind="email.failed").summary.endswith("failed at Resend")

    stats = email_analytics(since=now - timedelta(days=1), until=now + timedelta(days=1)).total
    assert (stats.failed, stats.provider_suppressed, stats.bounced, stats.soft_bounced) == (1, 1, 0, 0)


def test_an_event_that_beats_our_commit_is_linked_when_the_email_is_recorded(resend):
    from automations.batch_claim import DrainResult, batch_claim_new
    from automations.batch_outcome import batch_record_sent
    from automations.models import EmailBatch
    from automations.transports import transport_get

    from .test_sending import queue_welcomes

    queue_welcomes(1)
    EmailQueueItem.objects.filter(step__order=2).delete()
    batch, _ = batch_claim_new(worker="w", size=100, result=DrainResult())
    (message_id,) = transport_get().send_batch(
        messages=[e["message"] for e in batch.messages], idempotency_key=batch.provider_idempotency_key
    )
    from automations.services.tracking import email_event_record

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
    from automations.services.tracking import email_event_record

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


def test_bounces_recorded_before_the_type_was_kept_are_sorted_by_the_migration(sent_item, publish):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("automations.migrations.0009_tracking_bounces_honestly")
    other = CustomerFactory()
    publish("subscription.created", other, subscription_payload("sub_2"))
    hard_item = EmailQueueItem.objects.get(customer=other, step__order=1)
    now = timezone.now()
    # What the tracking service used to leave: bounced_at for every bounce, the type only in the raw payload.
    for n, (item, kind) in enumerate(((sent_item, "Transient"), (hard_item, "Permanent"))):
        EmailEvent.objects.create(
            queue_item=item,
            type="bounced",
            occurred_at=now,
            provider_event_id=f"old-{n}",
            provider_message_id=item.provider_message_id,
            payload={"type": "email.bounced", "data": {"bounce": {"type": kind, "subType": "General"}}},
        )
        EmailQueueItem.objects.filter(pk=item.pk).update(bounced_at=now)

    migration.bounces_by_type(apps, None)

    sent_item.refresh_from_db()
    hard_item.refresh_from_db()
    assert (sent_item.bounced_at, sent_item.soft_bounced_at) == (None, now)
    assert (hard_item.bounced_at, hard_item.soft_bounced_at) == (now, None)
    assert dict(EmailEvent.objects.values_list("provider_event_id", "bounce_type")) == {
        "old-0": "Transient",
        "old-1": "Permanent",
    }
