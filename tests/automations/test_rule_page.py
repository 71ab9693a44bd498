"""The rule page marketing edits without a manual: delays in words, events and products by name, the rule's numbers
and who is in it now, and query counts that do not grow with the data."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from automations import selectors
from automations.models import AutomationRule, EmailTemplate, EnrollmentStatus, QueueStatus
from customers.models import Topic
from tests.customers.factories import CustomerFactory

from .factories import (
    AutomationRuleFactory,
    AutomationStepFactory,
    EnrollmentFactory,
    QueuedEmailFactory,
    synced_product,
)

pytestmark = pytest.mark.django_db


def form_data(rule, *, delay="3 days 4 hours", products=(), anchor="enrollment"):
    steps = list(rule.steps.order_by("order"))
    data = {
        "name": rule.name,
        "description": rule.description,
        "enabled": "on",
        "trigger": rule.trigger,
        "topic": rule.topic_id or "",
        "reentry": rule.reentry,
        "exit_events": list(rule.exit_events),
        "condition_product_ids": list(products),
        "condition_lifecycle_stages": [],
        "condition_vip": "unknown",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": str(len(steps)),
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for i, step in enumerate(steps):
        data.update(
            {
                f"steps-{i}-id": step.pk,
                f"steps-{i}-rule": rule.pk,
                f"steps-{i}-order": step.order,
                f"steps-{i}-delay": delay if i == 0 else "1 day",
                f"steps-{i}-anchor": anchor if i == 0 else step.anchor,
                f"steps-{i}-template": step.template_id,
            }
        )
    return data


@pytest.fixture
def rule():
    # Its steps are marketing email, so the rule names their topic (the form refuses a marketing step without one).
    rule = AutomationRuleFactory(
        name="Trial ending", trigger="subscription.trial_will_end", topic=Topic.objects.get(slug="product-news")
    )
    AutomationStepFactory(rule=rule, order=1, delay=timedelta(0))
    AutomationStepFactory(rule=rule, order=2, delay=timedelta(days=1))
    return rule


def change_url(rule):
    return reverse("admin:automations_automationrule_change", args=[rule.pk])


def test_a_delay_typed_in_words_is_saved_and_shown_back_in_words(client, marketing_user, rule):
    client.force_login(marketing_user)
    response = client.post(change_url(rule), form_data(rule, delay="3 days 4 hours"))
    assert response.status_code == 302, response.context["errors"] if response.context else response
    assert rule.steps.get(order=1).delay == timedelta(days=3, hours=4)

    page = client.get(change_url(rule)).content.decode()
    assert 'value="3 days 4 hours"' in page
    assert "3 days 4 hours after enrollment" in page
    assert "00:00" not in page.split('id="steps-group"')[1]
    listing = client.get(reverse("admin:automations_automationrule_changelist")).content.decode()
    assert "1. " in listing and "3 days 4 hours after enrollment" in listing


@pytest.mark.parametrize(
    ("typed", "message"),
    [("3 dayz", "&#x27;dayz&#x27; is not a unit"), ("soon", "Could not read"), ("3", "Say the unit")],
)
def test_a_nonsense_delay_is_refused_with_a_message_and_nothing_changes(client, marketing_user, rule, typed, message):
    client.force_login(marketing_user)
    response = client.post(change_url(rule), form_data(rule, delay=typed))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert rule.steps.get(order=1).delay == timedelta(0)


def test_an_anchored_step_says_what_its_delay_counts_from(client, marketing_user):
    client.force_login(marketing_user)
    dunning = AutomationRule.objects.get(name="Dunning")
    page = client.get(change_url(dunning)).content.decode()
    assert "1 day before Stripe&#x27;s next payment attempt" in page
    assert "when Stripe stops retrying" in page
    listing = client.get(reverse("admin:automations_automationrule_changelist")).content.decode()
    assert "1 day before Stripe&#x27;s next payment attempt" in listing


def test_triggers_and_exit_events_are_shown_by_name_with_what_they_mean(client, marketing_user, rule):
    client.force_login(marketing_user)
    page = client.get(change_url(rule)).content.decode()
    assert '<option value="payment.failed">Payment failed (payment.failed)</option>' in page
    assert "Payment recovered (payment.recovered): An invoice that had failed was paid after all." in page
    assert 'id="event-help"' in page and "A trial ends in about three days" in page
    listing = client.get(reverse("admin:automations_automationrule_changelist")).content.decode()
    assert "Payment failed (payment.failed)" in listing


def test_products_are_picked_by_name_and_an_unsynced_id_is_kept(client, marketing_user, rule):
    synced_product("prod_modded", "Modded Server 8 GB")
    synced_product("prod_old", "Legacy 2 GB", active=False)
    rule.condition_product_ids = ["prod_modded", "prod_gone"]
    rule.save()
    client.force_login(marketing_user)
    page = client.get(change_url(rule)).content.decode()
    assert "Modded Server 8 GB" in page and "Legacy 2 GB (archived in Stripe)" in page
    assert "unknown product prod_gone" in page
    # Saved as shown (both ticked): the unknown id is not silently dropped.
    response = client.post(change_url(rule), form_data(rule, products=["prod_modded", "prod_gone"]))
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.condition_product_ids == ["prod_modded", "prod_gone"]
    # An id nobody synced cannot be typed in.
    response = client.post(change_url(rule), form_data(rule, products=["prod_typo"]))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_an_unknown_stored_product_is_shown_ticked(client, marketing_user, rule):
    rule.condition_product_ids = ["prod_gone"]
    rule.save()
    client.force_login(marketing_user)
    form = client.get(change_url(rule)).context["adminform"].form
    assert form["condition_product_ids"].value() == ["prod_gone"]
    assert ("prod_gone", "unknown product prod_gone") in form.fields["condition_product_ids"].choices


def sent(step, enrollment, *, opened=False, clicked=False, at=None):
    at = at or timezone.now() - timedelta(hours=1)
    return QueuedEmailFactory(
        enrollment=enrollment,
        step=step,
        status=QueueStatus.SENT,
        sent_at=at,
        opened_at=at if opened else None,
        clicked_at=at if clicked else None,
    )


def populate(rule, *, customers: int):
    first, second = list(rule.steps.order_by("order"))[:2]
    for n in range(customers):
        status = [EnrollmentStatus.ACTIVE, EnrollmentStatus.COMPLETED, EnrollmentStatus.EXITED][n % 3]
        enrollment = EnrollmentFactory(rule=rule, status=status)
        sent(first, enrollment, opened=n % 2 == 0, clicked=n % 4 == 0)
        if status != EnrollmentStatus.ACTIVE:
            sent(second, enrollment, opened=True)
        else:
            QueuedEmailFactory(enrollment=enrollment, step=second)


def test_the_rule_page_shows_its_numbers_as_the_analytics_counts_them(client, marketing_user, rule):
    populate(rule, customers=6)
    client.force_login(marketing_user)
    response = client.get(change_url(rule))
    numbers = response.context["numbers"]
    assert (numbers.enrolled, numbers.active, numbers.completed, numbers.exited) == (6, 2, 2, 2)
    page = response.content.decode()
    for name, value in (("enrolled", 6), ("active", 2), ("completed", 2), ("exited", 2)):
        assert f'data-number="{name}">{value}<' in page

    now = timezone.now()
    analytics = selectors.email_analytics(since=now - timedelta(days=1), until=now + timedelta(days=1), rule_id=rule.pk)
    expected = [(row.step.pk, row.stats.sent, row.stats.opened, row.stats.clicked) for row in analytics.rules[0].steps]
    shown = [(row.step.pk, row.stats.sent, row.stats.opened, row.stats.clicked) for row in numbers.steps]
    assert shown == expected == [(rule.steps.get(order=1).pk, 6, 3, 2), (rule.steps.get(order=2).pk, 4, 4, 0)]


def test_the_rule_page_lists_who_is_enrolled_now_with_links(client, marketing_user, rule, monkeypatch):
    from automations.admin import rules as rules_admin

    monkeypatch.setattr(rules_admin, "ENROLLED_NOW_SHOWN", 2)
    active = [EnrollmentFactory(rule=rule, customer=CustomerFactory()) for _ in range(3)]
    EnrollmentFactory(rule=rule, status=EnrollmentStatus.EXITED)
    client.force_login(marketing_user)
    page = client.get(change_url(rule)).content.decode()
    listed = page.split('id="enrolled-now"')[1].split("</ul>")[0]
    newest = sorted(active, key=lambda e: (e.enrolled_at, e.pk), reverse=True)[:2]
    for enrollment in newest:
        assert reverse("admin:customers_customer_change", args=[enrollment.customer_id]) in listed
    assert listed.count("<li>") == 2
    assert "The newest 2 of 3." in page
    full_list = f"?rule__id__exact={rule.pk}&amp;status__exact=active"
    assert full_list in page
    listing = client.get(
        reverse("admin:automations_enrollment_changelist"), {"rule__id__exact": rule.pk, "status__exact": "active"}
    )
    assert listing.context["cl"].result_count == 3


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_rule_pages_keep_their_query_count_as_data_grows(client, marketing_user, rule):
    client.force_login(marketing_user)
    listing = reverse("admin:automations_automationrule_changelist")
    populate(rule, customers=2)
    client.get(listing), client.get(change_url(rule))  # warm the per-process caches (content types) first
    small = (count_queries(client, listing), count_queries(client, change_url(rule)))

    populate(rule, customers=12)
    for n in range(4):  # more rules, each with steps and enrollments
        other = AutomationRuleFactory()
        for order in (1, 2, 3):
            AutomationStepFactory(rule=other, order=order, template=EmailTemplate.objects.get(name="Welcome"))
        if n % 2:
            populate(other, customers=2)
    AutomationStepFactory(rule=rule, order=3)  # and one more step on the page's own rule
    large = (count_queries(client, listing), count_queries(client, change_url(rule)))
    assert large == small


def test_the_rule_page_says_rates_are_of_delivered_emails_and_shows_them(client, marketing_user, rule):
    """The open rate is against delivered emails: the page shows the delivered count and says so (it said "of sent")."""
    first = rule.steps.order_by("order").first()
    at = timezone.now() - timedelta(hours=1)
    for n in range(4):
        email = sent(first, EnrollmentFactory(rule=rule), opened=n == 0)
        if n < 2:
            type(email).objects.filter(pk=email.pk).update(delivered_at=at)
    client.force_login(marketing_user)
    page = client.get(change_url(rule)).content.decode()
    assert 'data-number="delivered">2<' in page
    assert "50.0%" in page  # 1 open of 2 delivered, not 25.0% of 4 sent
    assert "share of the delivered emails" in page and "of sent emails" not in page
