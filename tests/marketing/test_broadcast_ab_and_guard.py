"""A/B tests of broadcasts (marketing/ab_tests.py), their figures (broadcast_figures.py) and the deliverability guard
(broadcast_guard.py). Tracking arrives through automations' tracking service, as Resend's webhooks deliver it."""

import itertools
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from automations.models import EmailQueueItem, QueueStatus
from automations.services.tracking import email_event_record
from marketing.ab_tests import ArmResult, ab_winner
from marketing.broadcast_figures import broadcast_figures
from marketing.broadcast_guard import GuardFigures, guard_reason
from marketing.broadcast_models import Broadcast, BroadcastRecipient, BroadcastStatus
from marketing.broadcast_tasks import broadcasts_tick
from marketing.broadcasts import broadcast_resume

from .conftest import customers_with_consent

pytestmark = pytest.mark.django_db

_events = itertools.count(1)


def items_of(broadcast, **filters):
    return EmailQueueItem.objects.filter(step__rule__broadcast=broadcast, **filters).order_by("pk")


def mark_sent(items) -> None:
    """What the drain records when the provider accepts them: sent, with the provider's message id."""
    for item in items:
        EmailQueueItem.objects.filter(pk=item.pk).update(
            status=QueueStatus.SENT, sent_at=timezone.now(), provider_message_id=f"msg-{item.pk}"
        )


def track(items, event_type: str, **extra) -> None:
    for item in items:
        email_event_record(
            event_type=event_type,
            provider_event_id=f"evt-{next(_events)}",
            provider_message_id=f"msg-{item.pk}",
            occurred_at=timezone.now(),
            provider="resend",
            **extra,
        )


def test_an_arm_under_500_means_no_test_and_everyone_gets_variant_a(make_broadcast, start):
    customers_with_consent(30)
    broadcast = start(make_broadcast(subject_variants=["Other"], test_share_percent=50))
    assert broadcast.status == BroadcastStatus.SENDING and broadcast.test_ends_at is None
    assert broadcast.ab_note == (
        "No A/B test: 50% of 30 recipients split 2 ways is 7 per variant, and a test needs at least 500 per "
        "variant. Everyone gets variant A."
    )
    recipients = BroadcastRecipient.objects.filter(broadcast=broadcast)
    assert set(recipients.values_list("variant__label", "phase")) == {("A", "all")} and recipients.count() == 30


def test_the_variant_with_most_clicks_per_delivered_email_wins_and_the_rest_get_it(
    make_broadcast, start, run_on_commit, no_drain_wakeups
):
    customers_with_consent(1000)
    broadcast = start(make_broadcast(subject_variants=["Other"], test_share_percent=100))
    assert broadcast.status == BroadcastStatus.TESTING
    split = dict(
        BroadcastRecipient.objects.filter(broadcast=broadcast, phase="test")
        .values_list("variant__label")
        .annotate(n=Count("pk"))
    )
    assert split == {"A": 500, "B": 500}
    a_items = items_of(broadcast, broadcast_recipient__variant__label="A")[:40]
    b_items = items_of(broadcast, broadcast_recipient__variant__label="B")[:20]
    mark_sent([*a_items, *b_items])
    track([*a_items, *b_items], "delivered")
    track(a_items[:3], "clicked", url="https://modready.example/a")  # 3 of 40 delivered: 7.5%
    track(b_items[:2], "clicked", url="https://modready.example/b")  # 2 of 20 delivered: 10%, fewer clicks, wins
    track(a_items[:40], "opened")  # opens never decide
    late = customers_with_consent(3, prefix="late")

    with run_on_commit():
        assert broadcasts_tick()["tests_ended"] == 0  # the wait has not passed
    Broadcast.objects.filter(pk=broadcast.pk).update(test_ends_at=timezone.now() - timedelta(seconds=1))
    with run_on_commit():
        assert broadcasts_tick()["tests_ended"] == 1
    broadcast.refresh_from_db()
    assert broadcast.winner.label == "B" and broadcast.status == BroadcastStatus.SENDING
    assert broadcast.ab_note == "Variant B won on clicks per delivered email (A: 3 of 40 (7.5%), B: 2 of 20 (10.0%))."
    rest = BroadcastRecipient.objects.filter(broadcast=broadcast, phase="winner")
    assert sorted(rest.values_list("customer_id", flat=True)) == sorted(c.pk for c in late)
    assert set(rest.values_list("variant__label", flat=True)) == {"B"}
    per_customer = list(items_of(broadcast).values_list("customer_id", flat=True))
    assert len(per_customer) == len(set(per_customer)) == 1003
    assert broadcast.audit.filter(action="A/B winner", actor_name="system").exists()


def test_a_tie_goes_to_the_lowest_label():
    a, b = object(), object()
    assert ab_winner([ArmResult(a, 100, 5), ArmResult(b, 200, 10)]).variant is a
    assert ab_winner([ArmResult(a, 0, 0), ArmResult(b, 10, 0)]).variant is a


def test_figures_count_each_outcome_per_variant_in_one_query(make_broadcast, start, django_assert_max_num_queries):
    customers_with_consent(6)
    broadcast = start(make_broadcast(subject_variants=["Other"]))  # no test: all A
    with django_assert_max_num_queries(1):
        empty = broadcast_figures(broadcast=broadcast)
    assert [row.label for row in empty.variants] == ["A", "B"] and empty.totals.queued == 6
    items = list(items_of(broadcast))
    mark_sent(items[:4])
    track(items[:3], "delivered")
    track(items[:1], "clicked", url="https://modready.example/x")
    track(items[3:4], "bounced", bounce_type="Permanent")
    EmailQueueItem.objects.filter(pk=items[4].pk).update(status=QueueStatus.PAUSED)
    with django_assert_max_num_queries(1):
        figures = broadcast_figures(broadcast=broadcast)
    a = figures.variants[0]
    assert (a.recipients, a.sent, a.delivered, a.clicked, a.bounced, a.held, a.queued) == (6, 4, 3, 1, 1, 1, 1)
    assert a.click_rate == pytest.approx(1 / 3) and a.bounce_rate == 0.25 and a.delivery_rate == 0.75
    assert figures.variants[1].recipients == 0 and figures.variants[1].click_rate is None
    assert figures.totals.sent == 4 and "Apple Mail Privacy Protection" in figures.opens_caveat


@pytest.mark.parametrize(
    "figures, pauses",
    [
        (GuardFigures(sent=100, bounced=5, delivered=95, complained=0), True),
        (GuardFigures(sent=99, bounced=5, delivered=94, complained=0), False),  # under the 100 sent minimum
        (GuardFigures(sent=100, bounced=4, delivered=96, complained=0), False),  # 4% is the limit, not over it
        (GuardFigures(sent=1300, bounced=0, delivered=1250, complained=2), True),
        (GuardFigures(sent=1300, bounced=0, delivered=1249, complained=2), False),  # under 1,250 delivered
        (GuardFigures(sent=1300, bounced=0, delivered=1250, complained=1), False),  # 0.08% exactly
    ],
)
def test_the_guard_thresholds_and_minimums(figures, pauses):
    assert (guard_reason(figures) is not None) == pauses


def test_the_guard_pauses_a_bouncing_broadcast_and_says_why(make_broadcast, start, run_on_commit, marketing_user):
    customers_with_consent(140)
    broadcast = start(make_broadcast())
    items = list(items_of(broadcast))
    mark_sent(items[:120])
    track(items[:4], "bounced", bounce_type="Permanent")
    track(items[4:10], "bounced", bounce_type="Transient")  # soft bounces are not counted
    with run_on_commit():
        assert broadcasts_tick()["guard_paused"] == 0  # 4 of 120: 3.3%
    track(items[10:11], "bounced", bounce_type="Permanent")
    with run_on_commit():
        assert broadcasts_tick()["guard_paused"] == 1  # 5 of 120: 4.2%
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.PAUSED
    assert broadcast.guard_note == (
        "Paused by the deliverability guard: hard bounces 5 of 120 sent (4.2%, limit 4%), over the last 120 emails "
        "sent."
    )
    assert items_of(broadcast, status=QueueStatus.PAUSED).count() == 20
    paused = broadcast.audit.get(action="paused")
    assert paused.actor is None and paused.actor_name == "system" and "5 of 120" in paused.detail

    # Staff resume it: the guard now watches what is sent after that, and does not pause it again at once.
    with run_on_commit():
        broadcast_resume(broadcast=broadcast, actor=marketing_user)
        broadcasts_tick()
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SENDING and broadcast.guard_note == ""
