"""Consent records are append-only; topic choices and the customer's time zone go through customers.consent."""

import pytest
from django.db import DatabaseError, transaction

from customers.consent import (
    customer_marketing_set,
    customer_time_zone_default_from_country,
    customer_time_zone_set,
    customer_topic_set,
)
from customers.models import ConsentRecord, ConsentSource, Topic
from customers.time_zones import zone_info

from .factories import CustomerFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def offers():
    topic, _ = Topic.objects.get_or_create(slug="offers", defaults={"name": "Offers"})
    return topic


def test_a_consent_record_cannot_be_changed_by_the_model_or_in_sql(offers):
    customer = CustomerFactory(opt_in_confirmed=True)
    record = customer_topic_set(customer=customer, topic=offers, subscribed=False, source=ConsentSource.API)
    record.opt_in = True
    with pytest.raises(ValueError, match="append-only"):
        record.save()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        ConsentRecord.objects.filter(pk=record.pk).update(opt_in=True)
    assert ConsentRecord.objects.get(pk=record.pk).opt_in is False


def test_deleting_a_staff_user_keeps_their_records_with_the_name(offers):
    staff = StaffUserFactory()
    customer = CustomerFactory()
    customer_marketing_set(customer=customer, opt_in=True, source=ConsentSource.STAFF, actor=staff, reason="asked")
    staff.delete()
    record = ConsentRecord.objects.get()
    assert record.actor is None and record.actor_name == staff.username and record.opt_in is True


def test_an_unknown_source_is_refused_and_nothing_is_written(offers):
    customer = CustomerFactory(opt_in_confirmed=True)
    with pytest.raises(ValueError):
        customer_topic_set(customer=customer, topic=offers, subscribed=False, source="carrier pigeon")
    assert not ConsentRecord.objects.exists() and not customer.topic_subscriptions.exists()


def test_a_time_zone_comes_from_the_country_once_and_never_overwrites_one_set():
    customer = CustomerFactory(time_zone="")
    assert customer_time_zone_default_from_country(customer=customer, country="jp") is True
    assert customer.time_zone == "Asia/Tokyo"
    assert customer_time_zone_default_from_country(customer=customer, country="DE") is False
    customer.refresh_from_db()
    assert customer.time_zone == "Asia/Tokyo"
    other = CustomerFactory(time_zone="")
    assert customer_time_zone_default_from_country(customer=other, country="ZZ") is False  # not a country we map
    with pytest.raises(ValueError):
        customer_time_zone_set(customer=other, time_zone="Mars/Olympus")
    customer_time_zone_set(customer=other, time_zone="America/Toronto")
    other.refresh_from_db()
    assert other.time_zone == "America/Toronto"


def test_an_unknown_or_blank_zone_falls_back_to_the_site_default(settings):
    settings.CUSTOMER_DEFAULT_TIME_ZONE = "Europe/Lisbon"
    assert zone_info("").key == "Europe/Lisbon"
    assert zone_info("Not/AZone").key == "Europe/Lisbon"
    assert zone_info("Asia/Tokyo").key == "Asia/Tokyo"
