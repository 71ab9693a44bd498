"""Who a marketing email of a topic would actually go to at a moment, in SQL: for the segments and broadcasts to
count exactly (the count a segment shows is the number a broadcast would enqueue).

The same rules the queue applies when it sends (automations/send_gates.py for topics and the frequency cap,
automations/email_state.py for consent and suppressions), written once more as one query; tests/automations/
test_send_gates.py proves on random customers that the two agree. Quiet hours are not a filter: they only move the
send to the morning (or skip it, per rule or broadcast, which the sender decides at send time).
"""

from datetime import datetime

from django.conf import settings
from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Lower

from customers.models import Customer, Topic, TopicSubscription

from .models import EmailQueueItem, Suppression
from .send_gates import cap_period, marketing_sends_q


def marketing_recipients(
    *, customers: QuerySet[Customer], topic: Topic, at: datetime, ignore_frequency_cap: bool = False
) -> QuerySet[Customer]:
    """The customers of `customers` a marketing email of `topic` would be sent to at `at`: an address, marketing
    consent (`opt_in_confirmed`), no suppression of any kind on the address, the topic on (their own choice, else the
    topic's default), and (unless `ignore_frequency_cap`, a critical announcement) under the frequency cap at `at`.
    A lazy queryset: `.count()` is one query, and it can be sliced for a sample of members."""
    chosen = TopicSubscription.objects.filter(customer=OuterRef("pk"), topic=topic)
    audience = customers.exclude(email="").filter(opt_in_confirmed=True)
    audience = audience.exclude(Exists(Suppression.objects.filter(email=Lower(OuterRef("email")))))
    if topic.subscribed_by_default:
        audience = audience.exclude(Exists(chosen.filter(subscribed=False)))
    else:
        audience = audience.filter(Exists(chosen.filter(subscribed=True)))
    cap = settings.MARKETING_FREQUENCY_CAP
    if cap and not ignore_frequency_cap:
        recent = (
            EmailQueueItem.objects.filter(customer=OuterRef("pk"))
            .filter(marketing_sends_q(since=at - cap_period()))
            .order_by()
            .values("customer")
            .annotate(n=Count("pk"))
            .values("n")
        )
        audience = audience.alias(
            recent_marketing=Coalesce(Subquery(recent, output_field=IntegerField()), Value(0))
        ).filter(recent_marketing__lt=cap)
    return audience
