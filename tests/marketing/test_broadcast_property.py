"""The promise of broadcasts, on random worlds: sent through the real queue and drain to (fake) Resend, a broadcast
never emails anyone against consent, suppressions, their topic choice, the frequency cap (unless the broadcast is
allowed to ignore it) or quiet hours in their own time zone, and never emails anyone twice, even when its queuing
runs twice and the drain runs again. The rules are checked from the data alone (tests/automations/test_send_gates.py's
`broken_rules`), not through the code under test."""

import itertools
from collections import Counter

import pytest
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from automations.models import EmailQueueItem, QueueStatus
from automations.services.suppressions import suppression_add
from customers.models import Customer, Topic, TopicSubscription
from marketing.broadcast_models import Broadcast
from marketing.broadcast_tasks import broadcast_enqueue
from marketing.broadcasts import broadcast_cap_override_set, broadcast_create, broadcast_send_now
from tests.automations.test_send_gates import REASONS, ZONES, broken_rules, sent_before, step_of

pytestmark = pytest.mark.django_db

_worlds = itertools.count(1)

customer_shapes = st.fixed_dictionaries(
    {
        "opt_in": st.booleans(),
        "zone": st.sampled_from(ZONES),
        "suppression": st.sampled_from(REASONS),
        "choice": st.sampled_from([None, True, False]),
        "sent_hours_ago": st.lists(st.sampled_from([0.5, 2, 5, 20, 30]), max_size=3),
    }
)
world = st.fixed_dictionaries(
    {
        "cap": st.sampled_from([0, 1, 2]),
        "cap_hours": st.sampled_from([1, 24]),
        "quiet": st.tuples(st.integers(0, 23), st.integers(0, 23)),
        "topic_on_by_default": st.booleans(),
        "ignore_cap": st.booleans(),
        "skip_when_held": st.booleans(),
        "customers": st.lists(customer_shapes, min_size=1, max_size=6),
    }
)


def _customer(**shape):
    return {"opt_in": True, "zone": "", "suppression": None, "choice": None, "sent_hours_ago": [], **shape}


KNOWN_WORLD = {
    "cap": 1,
    "cap_hours": 24,
    "quiet": (0, 0),
    "topic_on_by_default": True,
    "ignore_cap": False,
    "skip_when_held": False,
    "customers": [
        _customer(),
        _customer(sent_hours_ago=[2]),
        _customer(suppression=REASONS[2]),
        _customer(choice=False),
        _customer(opt_in=False),
    ],
}


def build(shape, *, template, segment, actor):
    n = next(_worlds)
    topic = Topic.objects.create(
        slug=f"world-{n}", name=f"World {n}", subscribed_by_default=shape["topic_on_by_default"]
    )
    earlier = step_of(topic)  # the marketing emails each customer already had
    now = timezone.now()
    for customer_shape in shape["customers"]:
        customer = Customer.objects.create(
            email=f"w{n}-{Customer.objects.count()}@example.com",
            name="World Fan",
            opt_in_confirmed=customer_shape["opt_in"],
            time_zone=customer_shape["zone"],
        )
        if customer_shape["suppression"]:
            suppression_add(email=customer.email, reason=customer_shape["suppression"])
        if customer_shape["choice"] is not None:
            TopicSubscription.objects.create(
                customer=customer, topic=topic, subscribed=customer_shape["choice"], updated_at=now
            )
        for hours in customer_shape["sent_hours_ago"]:
            sent_before(customer, earlier, hours_ago=hours)
    broadcast = broadcast_create(
        name=f"World {n}",
        topic=topic,
        segment=segment,
        template=template,
        when_held="skip" if shape["skip_when_held"] else "defer",
    )
    if shape["ignore_cap"]:
        broadcast_cap_override_set(broadcast=broadcast, ignore=True, reason="critical notice", actor=actor)
    return topic, broadcast


def test_a_broadcast_never_breaks_a_rule_and_never_emails_anyone_twice(
    drain, resend, template, everyone, marketing_user, no_drain_wakeups
):
    totals = Counter()

    @hypothesis_settings(
        max_examples=25,
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
            resend.reset()
            topics, broadcast = build(shape, template=template, segment=everyone, actor=marketing_user)
            broadcast_send_now(broadcast=broadcast, actor=marketing_user)
            broadcast_enqueue(broadcast.pk)
            Broadcast.objects.filter(pk=broadcast.pk).update(status="queuing")  # a retried task runs it again
            broadcast_enqueue(broadcast.pk, chunk_size=1)
            drain(time_budget=10)
            drain(time_budget=10)

            items = EmailQueueItem.objects.filter(step__rule__broadcast=broadcast).select_related("step__rule__topic")
            sent = [item for item in items if item.status == QueueStatus.SENT]
            for item in sent:
                broken = broken_rules(
                    item, topics=topics, cap=shape["cap"], cap_hours=shape["cap_hours"], quiet=shape["quiet"]
                )
                assert broken == [], (broken, shape)
            per_address = Counter(address for email in resend.delivered for address in email.to)
            assert all(count == 1 for count in per_address.values()), per_address
            assert sorted(per_address) == sorted(item.recipient for item in sent)
            per_customer = Counter(item.customer_id for item in items)
            assert all(count == 1 for count in per_customer.values())
            totals["sent"] += len(sent)
            totals["held"] += sum(1 for item in items if item.send_gate_note and item.status != QueueStatus.SENT)
            totals["not in audience"] += len(shape["customers"]) - len(items)
            transaction.set_rollback(True)

    check()
    # The examples covered sends, holds and exclusions: not a test that passes because nothing was sent.
    assert totals["sent"] and totals["held"] and totals["not in audience"], totals
