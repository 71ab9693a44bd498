"""The send-time gate of marketing email (automations/send_gates.py): topics, the frequency cap, quiet hours; what it
writes on the queue item; its constant query count; and the audience selector that must agree with it."""

import itertools
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import transaction
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from automations.marketing_audience import marketing_recipients
from automations.models import EmailQueueItem, QueueStatus, SuppressionReason, TemplateCategory, WhenHeld
from automations.send_gates import send_gate_pass
from automations.services.suppressions import suppression_add
from customers.models import Customer, Topic, TopicSubscription
from tests.customers.factories import CustomerFactory

from .factories import AutomationRuleFactory, AutomationStepFactory, EmailTemplateFactory, EnrollmentFactory

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)
QUIET_OFF = {"MARKETING_QUIET_HOURS_START": 0, "MARKETING_QUIET_HOURS_END": 0}


def step_of(topic=None, *, category=TemplateCategory.MARKETING, when_held=WhenHeld.DEFER):
    rule = AutomationRuleFactory(topic=topic, when_held=when_held)
    return AutomationStepFactory(rule=rule, template=EmailTemplateFactory(category=category))


def queue(customer, step, *, status=QueueStatus.PENDING, sent_at=None, override=""):
    """One email of `step` for `customer` (each in its own enrollment, so a customer can have several)."""
    n = next(_numbers)
    enrollment = EnrollmentFactory(rule=step.rule, customer=customer, scope_key=f"test:{n}", subscription_id=f"sub_{n}")
    if status != QueueStatus.PENDING:
        enrollment.status = "completed"
        enrollment.save(update_fields=["status"])
    now = timezone.now()
    return EmailQueueItem.objects.create(
        enrollment=enrollment,
        step=step,
        customer=customer,
        recipient=customer.email,
        scheduled_at=now - timedelta(seconds=1),
        next_attempt_at=now - timedelta(seconds=1),
        status=status,
        sent_at=sent_at,
        frequency_cap_override=override,
        idempotency_key=f"email:enrollment-{enrollment.pk}:step-{step.pk}",
    )


def sent_before(customer, step, *, hours_ago: float):
    return queue(customer, step, status=QueueStatus.SENT, sent_at=timezone.now() - timedelta(hours=hours_ago))


def claimed(items):
    """The items as the claim loads them (batch_claim_new's select_related)."""
    return list(
        EmailQueueItem.objects.select_related("customer", "step__template", "enrollment")
        .filter(pk__in=[item.pk for item in items])
        .order_by("next_attempt_at", "id")
    )


def quiet_now_in(zone: str) -> dict:
    """Quiet hours that contain this moment in `zone`: from this hour to two hours later."""
    hour = timezone.now().astimezone(ZoneInfo(zone)).hour
    return {"MARKETING_QUIET_HOURS_START": hour, "MARKETING_QUIET_HOURS_END": (hour + 2) % 24}


@pytest.fixture
def offers():
    return Topic.objects.get(slug="offers")


@pytest.fixture
def news():
    return Topic.objects.get(slug="product-news")


def test_a_customer_who_turned_a_topic_off_gets_none_of_it_and_still_gets_the_others(drain, offers, news):
    customer = CustomerFactory(opt_in_confirmed=True)
    TopicSubscription.objects.create(customer=customer, topic=offers, subscribed=False, updated_at=timezone.now())
    offer, newsletter = queue(customer, step_of(offers)), queue(customer, step_of(news))
    drain()
    offer.refresh_from_db()
    newsletter.refresh_from_db()
    assert offer.status == QueueStatus.SUPPRESSED
    assert offer.last_error == "Blocked: the customer turned off the topic \u201cOffers\u201d"
    assert newsletter.status == QueueStatus.SENT
    assert [message.to for message in mail.outbox] == [[customer.email]]


@override_settings(MARKETING_FREQUENCY_CAP=1, MARKETING_QUIET_HOURS_START=0, MARKETING_QUIET_HOURS_END=23)
def test_transactional_email_is_never_capped_or_quiet(drain, offers):
    customer = CustomerFactory(opt_in_confirmed=False)
    sent_before(customer, step_of(offers), hours_ago=1)
    receipt = queue(customer, step_of(category=TemplateCategory.TRANSACTIONAL))
    drain()
    receipt.refresh_from_db()
    assert receipt.status == QueueStatus.SENT and receipt.send_gate_note == ""


@override_settings(MARKETING_FREQUENCY_CAP=2, MARKETING_FREQUENCY_CAP_HOURS=24, **QUIET_OFF)
def test_a_capped_email_is_deferred_to_the_moment_the_cap_allows_it_with_the_reason(drain, offers, admin_client):
    customer = CustomerFactory(opt_in_confirmed=True)
    step = step_of(offers)
    sent_before(customer, step, hours_ago=1)
    older = sent_before(customer, step, hours_ago=5)
    item = queue(customer, step)
    drain()
    item.refresh_from_db()
    assert item.status == QueueStatus.PENDING and not mail.outbox
    assert item.next_attempt_at == older.sent_at + timedelta(hours=24)  # the older send leaves the 24 h window
    assert "frequency cap (2 marketing emails in 24 h)" in item.send_gate_note
    page = admin_client.get(reverse("admin:automations_emailqueueitem_changelist"))
    assert "Held: Deferred to" in page.content.decode()

    EmailQueueItem.objects.filter(pk=older.pk).update(sent_at=timezone.now() - timedelta(hours=25))
    EmailQueueItem.objects.filter(pk=item.pk).update(next_attempt_at=timezone.now())
    drain()
    item.refresh_from_db()
    assert item.status == QueueStatus.SENT
    assert "frequency cap" in item.send_gate_note  # the history stays on the email


@override_settings(MARKETING_FREQUENCY_CAP=1, MARKETING_FREQUENCY_CAP_HOURS=24, **QUIET_OFF)
def test_a_rule_that_skips_held_emails_cancels_them_with_the_reason(drain, offers):
    customer = CustomerFactory(opt_in_confirmed=True)
    step = step_of(offers, when_held=WhenHeld.SKIP)
    sent_before(customer, step, hours_ago=2)
    item = queue(customer, step)
    drain()
    item.refresh_from_db()
    assert item.status == QueueStatus.CANCELLED
    assert item.last_error == "Skipped: frequency cap (1 marketing emails in 24 h)"


@override_settings(MARKETING_FREQUENCY_CAP=1, MARKETING_FREQUENCY_CAP_HOURS=24, **QUIET_OFF)
def test_two_emails_in_one_batch_count_against_the_cap_together(offers):
    customer = CustomerFactory(opt_in_confirmed=True)
    first, second = queue(customer, step_of(offers)), queue(customer, step_of(offers))
    with transaction.atomic():
        allowed = send_gate_pass(claimed([first, second]), now=timezone.now())
    assert [item.pk for item in allowed] == [first.pk]
    second.refresh_from_db()
    assert second.status == QueueStatus.PENDING and "frequency cap" in second.send_gate_note


@override_settings(MARKETING_FREQUENCY_CAP=1, MARKETING_FREQUENCY_CAP_HOURS=24, **QUIET_OFF)
def test_an_override_goes_past_the_cap_and_says_who_allowed_it(drain, offers):
    customer = CustomerFactory(opt_in_confirmed=True)
    step = step_of(offers)
    sent_before(customer, step, hours_ago=1)
    item = queue(customer, step, override="anna: maintenance on Sunday")
    drain()
    item.refresh_from_db()
    assert item.status == QueueStatus.SENT
    assert item.send_gate_note == "Sent past the frequency cap: anna: maintenance on Sunday"


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/New_York"])
def test_quiet_hours_defer_to_their_end_in_the_customers_own_time_zone(drain, offers, settings, zone):
    settings.MARKETING_QUIET_HOURS_START, settings.MARKETING_QUIET_HOURS_END = quiet_now_in(zone).values()
    customer = CustomerFactory(opt_in_confirmed=True, time_zone=zone)
    elsewhere = CustomerFactory(
        opt_in_confirmed=True, time_zone="Pacific/Kiritimati" if "Tokyo" in zone else "Asia/Tokyo"
    )
    item, other = queue(customer, step_of(offers)), queue(elsewhere, step_of(offers))
    drain()
    item.refresh_from_db()
    other.refresh_from_db()
    local_end = item.next_attempt_at.astimezone(ZoneInfo(zone))
    assert item.status == QueueStatus.PENDING
    assert (local_end.hour, local_end.minute) == (settings.MARKETING_QUIET_HOURS_END, 0)
    assert timedelta(0) < item.next_attempt_at - timezone.now() <= timedelta(hours=2)
    assert f"quiet hours ({settings.MARKETING_QUIET_HOURS_START:02d}:00-" in item.send_gate_note
    assert zone in item.send_gate_note
    assert other.status == QueueStatus.SENT  # 5 or more hours away: not quiet there


def test_a_customer_without_a_zone_keeps_the_site_defaults_quiet_hours(drain, offers, settings):
    settings.CUSTOMER_DEFAULT_TIME_ZONE = "Australia/Sydney"
    settings.MARKETING_QUIET_HOURS_START, settings.MARKETING_QUIET_HOURS_END = quiet_now_in("Australia/Sydney").values()
    item = queue(CustomerFactory(opt_in_confirmed=True, time_zone=""), step_of(offers))
    drain()
    item.refresh_from_db()
    assert item.status == QueueStatus.PENDING and "Australia/Sydney" in item.send_gate_note


@pytest.mark.parametrize("size", [2, 40])
def test_the_gate_costs_the_same_queries_for_any_batch_size(size, offers, news, django_assert_num_queries, settings):
    # All through the `settings` fixture: an @override_settings decorator on the same test would be undone before the
    # fixture's own change, which then restored the decorator's values and left the cap on for every later test.
    settings.MARKETING_FREQUENCY_CAP, settings.MARKETING_FREQUENCY_CAP_HOURS = 2, 24
    settings.MARKETING_QUIET_HOURS_START, settings.MARKETING_QUIET_HOURS_END = 0, 23
    customers = CustomerFactory.create_batch(size, opt_in_confirmed=True, time_zone="Europe/Berlin")
    offer_step, news_step, receipt_step = (
        step_of(offers),
        step_of(news, when_held=WhenHeld.SKIP),
        step_of(category=TemplateCategory.TRANSACTIONAL),
    )
    items = []
    for index, customer in enumerate(customers):
        sent_before(customer, offer_step, hours_ago=1)
        TopicSubscription.objects.create(
            customer=customer, topic=news, subscribed=index % 3 != 0, updated_at=timezone.now()
        )
        items += [queue(customer, offer_step), queue(customer, news_step), queue(customer, receipt_step)]
    batch = claimed(items)
    # Rules with their topics, topic choices, the customers' cap locks, their recent sends; one UPDATE.
    with transaction.atomic(), django_assert_num_queries(5):
        send_gate_pass(batch, now=timezone.now())


def test_marketing_email_comes_from_the_marketing_address_and_links_the_preference_page(drain, offers, settings):
    settings.MARKETING_FROM_EMAIL = "ModReady News <news@news.modready.example>"
    customer = CustomerFactory(opt_in_confirmed=True)
    queue(customer, step_of(offers))
    queue(customer, step_of(category=TemplateCategory.TRANSACTIONAL))
    drain()
    marketing = next(m for m in mail.outbox if "List-Unsubscribe" in m.extra_headers)
    receipt = next(m for m in mail.outbox if "List-Unsubscribe" not in m.extra_headers)
    assert marketing.from_email == "ModReady News <news@news.modready.example>"
    assert receipt.from_email == settings.DEFAULT_FROM_EMAIL
    html = marketing.alternatives[0][0]
    assert "/email/preferences/" in html and "Choose which emails you get" in html


# --- the audience selector agrees with the gate ---------------------------------------------------------------------

ZONES = ["", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Pacific/Auckland"]
REASONS = [None, SuppressionReason.UNSUBSCRIBE, SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT]

customer_shapes = st.fixed_dictionaries(
    {
        "opt_in": st.booleans(),
        "zone": st.sampled_from(ZONES),
        "suppression": st.sampled_from(REASONS),
        "choice_a": st.sampled_from([None, True, False]),
        "choice_b": st.sampled_from([None, True, False]),
        "sent_hours_ago": st.lists(st.sampled_from([0.5, 2, 5, 20, 30]), max_size=3),
        "emails": st.lists(
            st.tuples(st.sampled_from(["a", "b", "transactional"]), st.booleans(), st.booleans()), max_size=3
        ),
    }
)
world = st.fixed_dictionaries(
    {
        "cap": st.sampled_from([0, 1, 2, 3]),
        "cap_hours": st.sampled_from([1, 24]),
        "quiet": st.tuples(st.integers(0, 23), st.integers(0, 23)),
        "customers": st.lists(customer_shapes, min_size=1, max_size=4),
    }
)


def _customer(**shape):
    return {
        "opt_in": True,
        "zone": "",
        "suppression": None,
        "choice_a": None,
        "choice_b": True,
        "sent_hours_ago": [],
        "emails": [("a", False, False)],
        **shape,
    }


# One world that surely sends, holds and blocks, whatever the random examples turn out to be.
KNOWN_WORLD = {
    "cap": 1,
    "cap_hours": 24,
    "quiet": (0, 0),
    "customers": [
        _customer(),
        _customer(sent_hours_ago=[2]),
        _customer(suppression=SuppressionReason.HARD_BOUNCE),
        _customer(choice_a=False, emails=[("a", False, False), ("b", True, False)]),
    ],
}


def build(shape_of_world):
    """Customers, topics (A on by default, B off by default), their history and their queued emails."""
    topic_a = Topic.objects.create(slug="topic-a", name="Topic A", subscribed_by_default=True)
    topic_b = Topic.objects.create(slug="topic-b", name="Topic B", subscribed_by_default=False)
    steps = {
        ("a", False): step_of(topic_a),
        ("a", True): step_of(topic_a, when_held=WhenHeld.SKIP),
        ("b", False): step_of(topic_b),
        ("b", True): step_of(topic_b, when_held=WhenHeld.SKIP),
        ("transactional", False): step_of(category=TemplateCategory.TRANSACTIONAL),
    }
    steps[("transactional", True)] = steps[("transactional", False)]
    now = timezone.now()
    for shape in shape_of_world["customers"]:
        customer = CustomerFactory(opt_in_confirmed=shape["opt_in"], time_zone=shape["zone"])
        if shape["suppression"]:
            suppression_add(email=customer.email, reason=shape["suppression"])
        for topic, choice in ((topic_a, shape["choice_a"]), (topic_b, shape["choice_b"])):
            if choice is not None:
                TopicSubscription.objects.create(customer=customer, topic=topic, subscribed=choice, updated_at=now)
        for hours in shape["sent_hours_ago"]:
            sent_before(customer, steps[("a", False)], hours_ago=hours)
        for kind, skip, override in shape["emails"]:
            queue(customer, steps[(kind, skip)], override="staff: critical" if override else "")
    return topic_a, topic_b


def broken_rules(item: EmailQueueItem, *, topics, cap: int, cap_hours: int, quiet) -> list[str]:
    """What a sent marketing email breaks, checked from the data alone (not through the code under test)."""
    customer = Customer.objects.get(pk=item.customer_id)
    broken = []
    if not customer.opt_in_confirmed:
        broken.append("no consent")
    from automations.models import Suppression

    if Suppression.objects.filter(email=customer.email.lower()).exists():
        broken.append("suppressed")
    topic = item.step.rule.topic
    choice = (
        TopicSubscription.objects.filter(customer=customer, topic=topic).values_list("subscribed", flat=True).first()
    )
    if not (topic.subscribed_by_default if choice is None else choice):
        broken.append("topic off")
    zone = ZoneInfo(customer.time_zone or "Europe/Berlin")
    start, end = quiet
    hour = item.sent_at.astimezone(zone).hour
    if start != end and ((start <= hour < end) if start < end else (hour >= start or hour < end)):
        broken.append("quiet hours")
    window = EmailQueueItem.objects.filter(
        customer=customer,
        step__template__category=TemplateCategory.MARKETING,
        sent_at__gt=item.sent_at - timedelta(hours=cap_hours),
        sent_at__lte=item.sent_at,
    ).count()
    if cap and window > cap and not item.frequency_cap_override:
        broken.append(f"cap: {window} > {cap}")
    return broken


def test_no_email_sent_breaks_consent_topics_caps_or_quiet_hours(drain):
    totals = {"sent": 0, "held": 0, "blocked": 0}

    @hypothesis_settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(shape=world)
    @example(shape=KNOWN_WORLD)
    def check(shape):
        with (
            transaction.atomic(),
            override_settings(
                MARKETING_FREQUENCY_CAP=shape["cap"],
                MARKETING_FREQUENCY_CAP_HOURS=shape["cap_hours"],
                MARKETING_QUIET_HOURS_START=shape["quiet"][0],
                MARKETING_QUIET_HOURS_END=shape["quiet"][1],
                CUSTOMER_DEFAULT_TIME_ZONE="Europe/Berlin",
            ),
        ):
            started = timezone.now()
            topics = build(shape)
            mail.outbox = []
            drain(time_budget=10)
            sent = EmailQueueItem.objects.filter(
                status=QueueStatus.SENT, sent_at__gte=started, step__template__category=TemplateCategory.MARKETING
            ).select_related("step__rule__topic")
            for item in sent:
                assert (
                    broken_rules(
                        item, topics=topics, cap=shape["cap"], cap_hours=shape["cap_hours"], quiet=shape["quiet"]
                    )
                    == []
                )
            totals["sent"] += len(sent)
            totals["held"] += EmailQueueItem.objects.exclude(send_gate_note="").filter(created_at__gte=started).count()
            totals["blocked"] += EmailQueueItem.objects.filter(status=QueueStatus.SUPPRESSED).count()
            transaction.set_rollback(True)

    check()
    # The examples covered the three outcomes: not a test that passes because nothing was sent.
    assert totals["sent"] and totals["held"] and totals["blocked"], totals


def test_the_audience_selector_counts_exactly_whom_the_gate_lets_through(drain):
    agreed = {"in": 0, "out": 0}

    @hypothesis_settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(shape=world, topic_name=st.sampled_from(["a", "b"]))
    @example(shape=KNOWN_WORLD, topic_name="a")
    def check(shape, topic_name):
        with (
            transaction.atomic(),
            override_settings(
                MARKETING_FREQUENCY_CAP=shape["cap"], MARKETING_FREQUENCY_CAP_HOURS=shape["cap_hours"], **QUIET_OFF
            ),
        ):
            # Only the one email below per customer.
            topic_a, topic_b = build({**shape, "customers": [{**c, "emails": []} for c in shape["customers"]]})
            topic = topic_a if topic_name == "a" else topic_b
            step = step_of(topic)
            customers = list(Customer.objects.filter(email__contains="@"))
            items = [queue(customer, step) for customer in customers]
            expected = set(
                marketing_recipients(customers=Customer.objects.all(), topic=topic, at=timezone.now()).values_list(
                    "pk", flat=True
                )
            )
            drain(time_budget=10)
            sent = set(
                EmailQueueItem.objects.filter(pk__in=[i.pk for i in items], status=QueueStatus.SENT).values_list(
                    "customer_id", flat=True
                )
            )
            assert sent == expected
            agreed["in"] += len(expected)
            agreed["out"] += len(customers) - len(expected)
            transaction.set_rollback(True)

    check()
    assert agreed["in"] and agreed["out"], agreed


@override_settings(MARKETING_FREQUENCY_CAP=2, MARKETING_FREQUENCY_CAP_HOURS=24)
def test_the_audience_is_one_query_and_respects_the_override(offers, django_assert_num_queries):
    capped = CustomerFactory(opt_in_confirmed=True)
    free = CustomerFactory(opt_in_confirmed=True)
    step = step_of(offers)
    sent_before(capped, step, hours_ago=1)
    sent_before(capped, step, hours_ago=2)
    sent_before(free, step, hours_ago=30)
    audience = marketing_recipients(customers=Customer.objects.all(), topic=offers, at=timezone.now())
    with django_assert_num_queries(1):
        assert set(audience.values_list("pk", flat=True)) == {free.pk}
    at_next_day = timezone.now() + timedelta(hours=23)  # both sends have left the 24 h window by then
    assert marketing_recipients(customers=Customer.objects.all(), topic=offers, at=at_next_day).count() == 2
    assert (
        marketing_recipients(
            customers=Customer.objects.all(), topic=offers, at=timezone.now(), ignore_frequency_cap=True
        ).count()
        == 2
    )
