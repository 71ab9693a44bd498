"""What a customer agreed to receive: all marketing (`opt_in_confirmed`, the gate for every marketing email), each
topic (TopicSubscription), their time zone for quiet hours; and the append-only ConsentRecord of every change, with
when and from where (the preference page, a one-click unsubscribe, staff, the API, an import).

The only writers of those rows. A change that changes nothing writes nothing (no record, no timeline entry), so a
page submitted twice or a one-click POST repeated by a mail app leaves one record.
"""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from .models import ConsentRecord, ConsentSource, Customer, TimelineSource, Topic, TopicSubscription
from .services import customer_update, timeline_event_record
from .time_zones import zone_for_country, zone_is_valid


def topics_offered() -> list[Topic]:
    """The topics a customer can choose, in the page's order."""
    return list(Topic.objects.filter(archived=False).order_by("position", "name"))


def topic_choices(*, customer: Customer, topics: list[Topic]) -> dict[int, bool]:
    """Whether the customer gets each topic (their own choice, else the topic's default), by topic id. One query."""
    chosen = dict(
        TopicSubscription.objects.filter(customer=customer, topic__in=topics).values_list("topic_id", "subscribed")
    )
    return {topic.pk: chosen.get(topic.pk, topic.subscribed_by_default) for topic in topics}


def consent_record_add(
    *, customer: Customer, topic: Topic | None, opt_in: bool, source: str, details: dict | None, actor, reason: str
) -> ConsentRecord:
    """Append a consent record (and its timeline entry). The services below call it with their change; call it alone
    only for a change made elsewhere (an unsubscribe suppression lifted by the customer)."""
    if source not in ConsentSource.values:
        raise ValueError(f"Unknown consent source {source!r}")
    record = ConsentRecord.objects.create(
        customer=customer,
        topic=topic,
        opt_in=opt_in,
        source=source,
        reason=reason[:500],
        details=details or {},
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
    )
    what = f"the topic {topic.name}" if topic else "all marketing email"
    timeline_event_record(
        customer=customer,
        source=TimelineSource.CRM,
        source_key=f"consent-record:{record.pk}",
        kind="consent.topic_changed" if topic else "consent.marketing_changed",
        occurred_at=record.created_at,
        summary=f"{'Turned on' if opt_in else 'Turned off'} {what} ({ConsentSource(source).label})",
        payload={"consent_record_id": record.pk, "topic": topic.slug if topic else None, "opt_in": opt_in},
        object_type="customers.consent_record",
        object_id=str(record.pk),
    )
    return record


@transaction.atomic
def customer_topic_set(
    *,
    customer: Customer,
    topic: Topic,
    subscribed: bool,
    source: str,
    details: dict[str, Any] | None = None,
    actor=None,
    reason: str = "",
    now: datetime | None = None,
) -> ConsentRecord | None:
    """Turn one topic on or off for the customer. Returns the consent record, or None when it was so already."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    current = topic_choices(customer=customer, topics=[topic])[topic.pk]
    if current == subscribed:
        return None
    TopicSubscription.objects.update_or_create(
        customer=customer, topic=topic, defaults={"subscribed": subscribed, "updated_at": now or timezone.now()}
    )
    return consent_record_add(
        customer=customer, topic=topic, opt_in=subscribed, source=source, details=details, actor=actor, reason=reason
    )


@transaction.atomic
def customer_marketing_set(
    *,
    customer: Customer,
    opt_in: bool,
    source: str,
    details: dict[str, Any] | None = None,
    actor=None,
    reason: str = "",
) -> ConsentRecord | None:
    """Join or leave all marketing email (`opt_in_confirmed`). Returns the consent record, or None when unchanged."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.opt_in_confirmed == opt_in:
        return None
    customer_update(customer=customer, opt_in_confirmed=opt_in)
    return consent_record_add(
        customer=customer, topic=None, opt_in=opt_in, source=source, details=details, actor=actor, reason=reason
    )


@transaction.atomic
def customer_time_zone_set(*, customer: Customer, time_zone: str) -> Customer:
    """Set the customer's IANA time zone (quiet hours are kept in it); "" goes back to the site default."""
    if time_zone and not zone_is_valid(time_zone):
        raise ValueError(f"Unknown time zone {time_zone!r}")
    Customer.objects.filter(pk=customer.pk).update(time_zone=time_zone, updated_at=timezone.now())
    customer.time_zone = time_zone
    return customer


def customer_time_zone_default_from_country(*, customer: Customer, country: str) -> bool:
    """Give a customer without a time zone the zone of their country (Stripe's address.country). Never overwrites a
    zone already set. Returns whether it set one."""
    zone = zone_for_country(country)
    if customer.time_zone or not zone:
        return False
    updated = Customer.objects.filter(pk=customer.pk, time_zone="").update(time_zone=zone, updated_at=timezone.now())
    if updated:
        customer.time_zone = zone
    return bool(updated)
