import pytest
from django.db import IntegrityError

from customers import services
from customers.models import Customer, TimelineEvent
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_upsert_creates_then_finds_by_email_case_insensitively():
    first, created = services.customer_upsert(email="Alex@Example.com", name="Alex")
    again, created_again = services.customer_upsert(email="  alex@EXAMPLE.com ", name="Alex B")

    assert created and not created_again
    assert again.pk == first.pk
    assert Customer.objects.count() == 1
    again.refresh_from_db()
    assert again.email == "alex@example.com"
    assert again.name == "Alex B"


def test_upsert_attaches_stripe_id_to_customer_known_by_email():
    trial = CustomerFactory(email="trial@example.com")

    customer, created = services.customer_upsert(email="trial@example.com", stripe_customer_id="cus_123")

    assert not created
    assert customer.pk == trial.pk
    assert customer.stripe_customer_id == "cus_123"


def test_email_change_in_stripe_keeps_one_customer():
    services.customer_upsert(email="old@example.com", stripe_customer_id="cus_abc")

    customer, created = services.customer_upsert(email="new@example.com", stripe_customer_id="cus_abc")

    assert not created
    assert Customer.objects.count() == 1
    assert customer.email == "new@example.com"
    assert services.customer_upsert(email="new@example.com")[0].pk == customer.pk


def test_email_change_onto_another_customers_email_keeps_both_records_intact():
    services.customer_upsert(email="a@example.com", stripe_customer_id="cus_a")
    other = CustomerFactory(email="b@example.com")

    customer, _ = services.customer_upsert(email="b@example.com", stripe_customer_id="cus_a")

    assert customer.pk != other.pk
    assert customer.email == "a@example.com"
    assert customer.metadata["conflicting_email"] == "b@example.com"


def test_second_stripe_customer_with_same_email_is_remembered_not_duplicated():
    first, _ = services.customer_upsert(email="dup@example.com", stripe_customer_id="cus_1")

    second, created = services.customer_upsert(email="dup@example.com", stripe_customer_id="cus_2")

    assert not created and second.pk == first.pk
    assert second.stripe_customer_id == "cus_1"
    assert second.metadata["other_stripe_customer_ids"] == ["cus_2"]


def test_database_refuses_duplicate_emails_that_differ_only_in_case():
    CustomerFactory(email="case@example.com")
    with pytest.raises(IntegrityError):
        CustomerFactory(email="CASE@example.com")


def test_database_refuses_two_customers_with_one_stripe_id_but_allows_many_without():
    CustomerFactory(stripe_customer_id="")
    CustomerFactory(stripe_customer_id="")
    CustomerFactory(stripe_customer_id="cus_x")
    with pytest.raises(IntegrityError):
        CustomerFactory(stripe_customer_id="cus_x")


def test_upsert_refuses_unknown_fields():
    with pytest.raises(ValueError, match="lifecycle_stage"):
        services.customer_upsert(email="x@example.com", lifecycle_stage="active")


def test_upsert_sets_marketing_fields_and_merges_metadata():
    services.customer_upsert(email="m@example.com", metadata={"source": "trial"})
    customer, _ = services.customer_upsert(
        email="m@example.com", opt_in_confirmed=True, vip_status=True, metadata={"campaign": "kickstarter"}
    )
    assert customer.opt_in_confirmed and customer.vip_status
    assert customer.metadata == {"source": "trial", "campaign": "kickstarter"}


def test_timeline_records_the_same_source_event_once(customer):
    first = services.timeline_event_record(
        customer=customer, source="stripe", source_key="evt_1", kind="subscription.created", summary="Pro plan"
    )
    second = services.timeline_event_record(
        customer=customer, source="stripe", source_key="evt_1", kind="subscription.created", summary="Pro plan"
    )

    assert first.created and not second.created
    assert second.event.pk == first.event.pk
    assert TimelineEvent.objects.filter(customer=customer).count() == 1


def test_timeline_keys_are_per_source(customer):
    services.timeline_event_record(customer=customer, source="stripe", source_key="1", kind="a")
    services.timeline_event_record(customer=customer, source="email", source_key="1", kind="b")
    assert customer.timeline_events.count() == 2


def test_a_stripe_customer_without_email_is_kept_and_gets_its_email_later():
    first, created = services.customer_upsert(email="", stripe_customer_id="cus_noemail")
    second, _ = services.customer_upsert(email="", stripe_customer_id="cus_noemail2")

    assert created and first.email == "" and second.pk != first.pk  # blank emails do not collide
    later, created_again = services.customer_upsert(email="Found@Example.com", stripe_customer_id="cus_noemail")
    assert not created_again and later.pk == first.pk
    assert later.email == "found@example.com"
