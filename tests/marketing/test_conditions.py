"""Each condition on a cast whose facts are known (tests/marketing/factories.py::cast), evaluated in SQL."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from marketing.audience import segment_audience, segment_summary
from marketing.conditions import condition_text, value_parse
from marketing.selectors import segment_list, segment_members
from tests.marketing.factories import cast, segment_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    return cast(timezone.now())


def names(customers) -> set[str]:
    return {customer.name for customer in customers}


def matched(people, field, operator, value, at=None) -> set[str]:
    segment = segment_with((field, operator, value))
    return names(segment_members(segment=segment, at=at or people.now))


CASES = [
    ("lifecycle_stage", "one_of", ["active", "at_risk"], {"Ada", "Dan"}),
    ("lifecycle_stage", "none_of", ["active", "at_risk"], {"Ben", "Cleo"}),
    ("product", "one_of", ["prod_server"], {"Ada", "Dan"}),  # current subscriptions only: Ben's ended
    ("product", "none_of", ["prod_server"], {"Ben", "Cleo"}),
    ("plan", "one_of", ["price_server_yearly"], {"Dan"}),
    ("subscription_status", "one_of", ["canceled", "past_due"], {"Ben", "Dan"}),
    ("subscription_status", "none_of", ["active", "past_due", "canceled"], {"Cleo"}),
    ("vip", "yes", None, {"Ada"}),
    ("vip", "no", None, {"Ben", "Cleo", "Dan"}),
    ("marketing_consent", "yes", None, {"Ada", "Ben", "Dan"}),
    ("marketing_consent", "no", None, {"Cleo"}),
    ("tenure", "at_least_days", 30, {"Ada", "Cleo", "Dan"}),
    ("tenure", "at_most_days", 30, {"Ben"}),
    ("country", "one_of", ["DE"], {"Ada", "Dan"}),
    ("country", "none_of", ["DE"], {"Ben", "Cleo"}),  # Cleo: no Stripe customer, so no country to exclude her by
    ("created", "within_days", 50, {"Ben", "Dan"}),
    ("created", "not_within_days", 50, {"Ada", "Cleo"}),
    ("churned", "within_days", 14, {"Ben"}),
    ("churned", "within_days", 7, set()),
    ("opened_email", "within_days", 7, {"Ada"}),  # Cleo's open came within seconds of delivery: a machine
    ("opened_email", "not_within_days", 7, {"Ben", "Cleo", "Dan"}),
    ("clicked_email", "within_days", 30, {"Ada"}),
    ("clicked_email", "within_days", 45, {"Ada", "Dan"}),
    ("received_rule", "none_of", "WELCOME_RULE", {"Ben", "Dan"}),
    ("received_template", "one_of", "WELCOME_TEMPLATE", {"Ada", "Cleo"}),
    ("open_ticket", "yes", None, {"Ben"}),  # Ada's ticket is closed
    ("open_ticket", "no", None, {"Ada", "Cleo", "Dan"}),
    ("failed_payment", "within_days", 7, {"Ben"}),
    ("failed_payment", "within_days", 30, {"Ben", "Dan"}),
]


@pytest.mark.parametrize("field, operator, value, expected", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_each_condition_matches_the_customers_it_says(people, field, operator, value, expected):
    value = (
        {"WELCOME_RULE": [people.welcome_rule.pk], "WELCOME_TEMPLATE": [people.welcome_template.pk]}.get(value, value)
        if isinstance(value, str)
        else value
    )
    assert matched(people, field, operator, value) == expected


def test_periods_are_utc_days_both_included(people):
    day = (people.now - timedelta(days=10)).date()
    one_day = {"since": day.isoformat(), "until": day.isoformat()}
    assert matched(people, "created", "between", one_day) == {"Ben"}
    assert matched(people, "churned", "between", one_day) == {"Ben"}
    before = {"since": "2000-01-01", "until": (day - timedelta(days=1)).isoformat()}
    assert matched(people, "churned", "between", before) == set()


def test_in_the_last_n_days_counts_back_from_the_moment_evaluated(people):
    assert matched(people, "failed_payment", "within_days", 7) == {"Ben"}
    assert matched(people, "failed_payment", "within_days", 7, at=people.now + timedelta(days=5)) == set()


def test_any_takes_a_customer_who_matches_one_condition_all_does_not(people):
    conditions = (("vip", "yes", None), ("open_ticket", "yes", None))  # Ada is VIP only, Ben has a ticket only
    assert names(segment_members(segment=segment_with(*conditions, match="any"), at=people.now)) == {"Ada", "Ben"}
    assert names(segment_members(segment=segment_with(*conditions, match="all"), at=people.now)) == set()
    both = (("marketing_consent", "yes", None), ("lifecycle_stage", "one_of", ["active", "churned"]))
    assert names(segment_members(segment=segment_with(*both, match="all"), at=people.now)) == {"Ada", "Ben"}


def test_no_condition_is_every_customer(people):
    assert names(segment_members(segment=segment_with(), at=people.now)) == {"Ada", "Ben", "Cleo", "Dan"}


def test_the_audience_leaves_out_no_consent_suppressed_and_no_address(people):
    segment = segment_with()
    people.ben.email = ""
    people.ben.save()
    # Cleo: no consent; Dan: unsubscribed; Ben: no address. A suppression written in another case still counts.
    assert names(segment_audience(segment=segment, at=people.now)) == {"Ada"}
    people.ada.email = "Ada.Upper@Example.com"
    people.ada.save()
    from automations.models import Suppression

    Suppression.objects.create(email="ada.upper@example.com", reason="complaint")
    assert names(segment_audience(segment=segment, at=people.now)) == set()


def test_with_a_topic_the_audience_also_leaves_out_who_turned_it_off(people):
    from customers.models import Topic, TopicSubscription

    offers = Topic.objects.get(slug="offers")
    TopicSubscription.objects.create(customer=people.ada, topic=offers, subscribed=False, updated_at=people.now)
    segment = segment_with()
    assert names(segment_audience(segment=segment, at=people.now)) == {"Ada", "Ben"}
    assert names(segment_audience(segment=segment, topic=offers, at=people.now)) == {"Ben"}
    news = Topic.objects.get(slug="product-news")
    assert names(segment_audience(segment=segment, topic=news, at=people.now)) == {"Ada", "Ben"}


def test_count_equals_members_equals_the_audience(people):
    segment = segment_list().get(pk=segment_with(("lifecycle_stage", "none_of", ["trial"])).pk)
    summary = segment_summary(segment=segment, at=people.now)
    audience = list(segment_audience(segment=segment, at=people.now))
    assert summary.audience == len(audience) == len(summary.sample) == 2  # Ada and Ben; Dan unsubscribed
    assert names(summary.sample) == names(audience) == {"Ada", "Ben"}
    assert summary.matching == 3


@pytest.mark.parametrize("extra", [0, 25])
def test_count_and_sample_cost_the_same_queries_at_any_size(people, extra, django_assert_num_queries):
    from tests.customers.factories import CustomerFactory

    CustomerFactory.create_batch(extra, opt_in_confirmed=True, lifecycle_stage="active")
    segment = segment_with(
        ("lifecycle_stage", "one_of", ["active", "churned"]),
        ("opened_email", "not_within_days", 30),
        ("failed_payment", "not_within_days", 1),
        ("country", "none_of", ["FR"]),
        match="all",
    )
    segment = segment_list().get(pk=segment.pk)
    with django_assert_num_queries(3):  # the audience counted, a sample of it, the customers matching
        summary = segment_summary(segment=segment, at=people.now, sample_size=20)
    assert summary.audience == extra  # Ada opened, Ben churned in FR
    assert len(summary.sample) == min(extra, 20)


def test_a_damaged_condition_is_a_message_not_an_error(people):
    segment = segment_with(("vip", "yes", None))
    segment.conditions.update(value=[1, 2])
    summary = segment_summary(segment=segment_list().get(pk=segment.pk), at=people.now)
    assert summary.problem == "Yes / no takes no value: leave it empty."
    segment.conditions.update(field="shoe_size")
    assert (
        "is not a condition field" in segment_summary(segment=segment_list().get(pk=segment.pk), at=people.now).problem
    )


@pytest.mark.parametrize(
    "field, operator, text, stored",
    [
        ("lifecycle_stage", "one_of", "Active, at risk", ["active", "at_risk"]),
        ("country", "none_of", "de, fr, de", ["DE", "FR"]),
        ("tenure", "at_least_days", " 90 ", 90),
        ("created", "between", "2026-01-01 to 2026-03-31", {"since": "2026-01-01", "until": "2026-03-31"}),
        ("vip", "yes", "", None),
        ("subscription_status", "one_of", "past due", ["past_due"]),
    ],
)
def test_what_staff_type_is_read_per_field(db, field, operator, text, stored):
    assert value_parse(field=field, operator=operator, text=text) == stored


@pytest.mark.parametrize(
    "field, operator, text, message",
    [
        ("lifecycle_stage", "at_least_days", "3", "“Lifecycle stage” takes “is one of”, “is none of”"),
        ("lifecycle_stage", "one_of", "actve", "Not known values: actve"),
        ("lifecycle_stage", "one_of", "", "A list of 1 to 200 values"),
        ("tenure", "at_least_days", "ninety", "A whole number of days from 1 to 36,500."),
        ("tenure", "at_least_days", "0", "A whole number of days from 1 to 36,500."),
        ("created", "between", "2026-03-31 to 2026-01-01", "the first not after the second"),
        ("created", "between", "last spring", "Two dates"),
        ("country", "one_of", "Germany", "Not two-letter country codes"),
        ("vip", "no", "maybe", "Yes / no takes no value"),
        ("product", "one_of", "prod_nothing", "Not known products: prod_nothing"),
        ("received_template", "one_of", "No such template", "Not known email templates"),
    ],
)
def test_a_wrong_value_says_what_is_wrong(db, field, operator, text, message):
    with pytest.raises(ValidationError) as raised:
        value_parse(field=field, operator=operator, text=text)
    assert message in " ".join(raised.value.messages)


def test_conditions_read_as_sentences(people):
    assert (
        condition_text(field="opened_email", operator="within_days", value=30) == "Opened any email in the last 30 days"
    )
    assert condition_text(field="vip", operator="no", value=None) == "VIP: no"
    assert (
        condition_text(field="received_template", operator="one_of", value=[people.welcome_template.pk])
        == f"Was sent the email (template) is one of {people.welcome_template.name}"
    )
