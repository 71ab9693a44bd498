"""The customer's preference page (topics, leaving and joining marketing) and the one-click unsubscribe that leaves
only the email's topic. Every change is a consent record."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from automations.models import EmailQueueItem, QueueStatus, Suppression, SuppressionReason, TemplateCategory
from automations.preference_links import preferences_token_make, preferences_url
from automations.services.suppressions import suppression_add, unsubscribe_token_make
from customers.consent import topic_choices, topics_offered
from customers.models import ConsentRecord, ConsentSource, Topic, TopicSubscription
from tests.customers.factories import CustomerFactory

from .test_send_gates import queue, step_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_page_limits():
    cache.clear()


def page_of(customer) -> str:
    return reverse("automations:preferences", args=[preferences_token_make(customer_id=customer.pk)])


def choices(customer) -> dict[str, bool]:
    topics = topics_offered()
    chosen = topic_choices(customer=customer, topics=topics)
    return {topic.slug: chosen[topic.pk] for topic in topics}


def test_the_page_shows_every_topic_and_what_each_choice_does(client):
    customer = CustomerFactory(opt_in_confirmed=True, email="mia@example.com")
    response = client.get(page_of(customer))
    text = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    for name in ("Product news", "Game events", "Offers", "Crowdfunding"):
        assert name in text
    assert "Ticked: you get emails about this topic. Not ticked: you get none of them." in text
    assert "receipts, payment\n  reminders, support tickets) always arrive" in text
    assert "Stop all marketing email" in text and "mia@example.com" in text
    assert "<script" not in text


def test_turning_topics_off_and_on_records_each_change(client):
    customer = CustomerFactory(opt_in_confirmed=True)
    response = client.post(page_of(customer), {"action": "save", "topic": ["product-news", "game-events"]})
    assert response.status_code == 200 and "Saved." in response.content.decode()
    assert choices(customer) == {"product-news": True, "game-events": True, "offers": False, "crowdfunding": False}
    records = ConsentRecord.objects.filter(customer=customer).order_by("topic__slug")
    assert [(r.topic.slug, r.opt_in, r.source) for r in records] == [
        ("crowdfunding", False, ConsentSource.PREFERENCE_PAGE),
        ("offers", False, ConsentSource.PREFERENCE_PAGE),
    ]
    # Sent again (a double click): nothing changes, no new record.
    client.post(page_of(customer), {"action": "save", "topic": ["product-news", "game-events"]})
    assert ConsentRecord.objects.filter(customer=customer).count() == 2
    client.post(page_of(customer), {"action": "save", "topic": ["product-news", "game-events", "offers"]})
    assert choices(customer)["offers"] is True
    assert ConsentRecord.objects.filter(customer=customer).count() == 3
    assert customer.timeline_events.filter(kind="consent.topic_changed").count() == 3


def test_leaving_all_marketing_and_joining_again(client):
    customer = CustomerFactory(opt_in_confirmed=True)
    left = client.post(page_of(customer), {"action": "leave"}).content.decode()
    customer.refresh_from_db()
    assert customer.opt_in_confirmed is False
    assert "You will get no more news, offers or event emails" in left and "Get ModReady news again" in left
    client.post(page_of(customer), {"action": "join"})
    customer.refresh_from_db()
    assert customer.opt_in_confirmed is True
    assert list(
        ConsentRecord.objects.filter(customer=customer, topic=None).order_by("id").values_list("opt_in", "source")
    ) == [
        (False, ConsentSource.PREFERENCE_PAGE),
        (True, ConsentSource.PREFERENCE_PAGE),
    ]


def test_joining_again_lifts_their_own_unsubscribe_but_never_a_bounce(client):
    customer = CustomerFactory(opt_in_confirmed=True)
    suppression_add(email=customer.email, reason=SuppressionReason.UNSUBSCRIBE)
    suppression_add(email=customer.email, reason=SuppressionReason.HARD_BOUNCE)
    assert "Get ModReady news again" in client.get(page_of(customer)).content.decode()
    page = client.post(page_of(customer), {"action": "join"}).content.decode()
    assert set(Suppression.objects.values_list("reason", flat=True)) == {SuppressionReason.HARD_BOUNCE}
    assert "held whatever you choose here" in page and "hard-bounced" in page
    assert ConsentRecord.objects.get(customer=customer).details["lifted"] == "unsubscribe suppression"


@pytest.mark.parametrize("token", ["nonsense", preferences_token_make(customer_id=1) + "x", "preview"])
def test_a_changed_link_opens_nobodys_preferences(client, token):
    CustomerFactory()
    response = client.get(reverse("automations:preferences", args=[token]))
    assert response.status_code == 400 and "This link does not work" in response.content.decode()


def test_a_bad_form_changes_nothing_and_is_a_400(client):
    customer = CustomerFactory(opt_in_confirmed=True)
    assert client.post(page_of(customer), {"action": "drop tables"}).status_code == 400
    assert client.post(page_of(customer), {}).status_code == 400
    assert not ConsentRecord.objects.exists()


def test_the_page_is_limited_per_client_address(client):
    customer = CustomerFactory(opt_in_confirmed=True)
    statuses = [client.get(page_of(customer)).status_code for _ in range(32)]
    assert statuses[:30] == [200] * 30 and statuses[-1] == 429


def test_the_link_in_the_email_opens_that_customers_page(drain, client):
    customer = CustomerFactory(opt_in_confirmed=True)
    queue(customer, step_of(Topic.objects.get(slug="offers")))
    drain()
    from django.core import mail

    link = preferences_url(customer_id=customer.pk)
    assert link in mail.outbox[0].body
    assert customer.email in client.get(link.removeprefix("http://127.0.0.1:8000")).content.decode()


# --- one-click unsubscribe -------------------------------------------------------------------------------------


def test_one_click_leaves_the_topic_of_that_email_only(client):
    customer = CustomerFactory(opt_in_confirmed=True)
    offers = Topic.objects.get(slug="offers")
    item = queue(customer, step_of(offers), status=QueueStatus.SENT)
    url = reverse("automations:unsubscribe", args=[unsubscribe_token_make(queue_item_id=item.pk)])
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "You will get no more Offers emails" in response.content.decode()
    customer.refresh_from_db()
    assert customer.opt_in_confirmed is True and not Suppression.objects.exists()
    assert choices(customer) == {"product-news": True, "game-events": True, "offers": False, "crowdfunding": True}
    record = ConsentRecord.objects.get(customer=customer)
    assert (record.topic, record.opt_in, record.source, record.details) == (
        offers,
        False,
        ConsentSource.ONE_CLICK,
        {"queue_item_id": item.pk},
    )
    assert EmailQueueItem.objects.get(pk=item.pk).unsubscribed_at is not None
    client.post(url, {"List-Unsubscribe": "One-Click"})  # mail apps repeat it
    assert ConsentRecord.objects.count() == 1


def test_our_own_unsubscribe_page_still_leaves_all_marketing(client):
    customer = CustomerFactory(opt_in_confirmed=True)
    item = queue(customer, step_of(Topic.objects.get(slug="offers")), status=QueueStatus.SENT)
    url = reverse("automations:unsubscribe", args=[unsubscribe_token_make(queue_item_id=item.pk)])
    assert "Choose the topics you" in client.get(url).content.decode()
    client.post(url)
    customer.refresh_from_db()
    assert customer.opt_in_confirmed is False
    assert Suppression.objects.get().reason == SuppressionReason.UNSUBSCRIBE
    record = ConsentRecord.objects.get(customer=customer)
    assert (record.topic, record.opt_in, record.source) == (None, False, ConsentSource.UNSUBSCRIBE_PAGE)


def test_one_click_on_an_email_without_a_topic_leaves_all_marketing_as_before(client):
    customer = CustomerFactory(opt_in_confirmed=True)
    item = queue(customer, step_of(category=TemplateCategory.TRANSACTIONAL), status=QueueStatus.SENT)
    url = reverse("automations:unsubscribe", args=[unsubscribe_token_make(queue_item_id=item.pk)])
    client.post(url, {"List-Unsubscribe": "One-Click"})
    assert Suppression.objects.get().reason == SuppressionReason.UNSUBSCRIBE
    assert ConsentRecord.objects.get(customer=customer).source == ConsentSource.ONE_CLICK


def test_topic_subscriptions_are_per_customer(client):
    one, other = CustomerFactory(opt_in_confirmed=True), CustomerFactory(opt_in_confirmed=True)
    client.post(page_of(one), {"action": "save", "topic": []})
    assert not any(choices(one).values()) and all(choices(other).values())
    assert TopicSubscription.objects.filter(customer=other).count() == 0
