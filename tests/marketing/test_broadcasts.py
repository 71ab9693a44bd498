"""Broadcasts (marketing/broadcasts.py, broadcast_tasks.py): creating one with its variants, the state machine and its
audit, queuing exactly one email per recipient whatever is repeated or crashes, pause / resume / cancel through the
queue, the tick, the staff test send, the timeline and the hidden rule."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from automations.models import AutomationRule, EmailQueueItem, QueueStatus, TemplateCategory
from core.schedules import declared_jobs
from customers.models import TimelineEvent
from marketing import broadcast_tasks
from marketing.broadcast_models import Broadcast, BroadcastRecipient, BroadcastStatus
from marketing.broadcast_tasks import broadcast_enqueue, broadcasts_tick
from marketing.broadcasts import (
    BroadcastRefused,
    broadcast_cancel,
    broadcast_cap_override_set,
    broadcast_pause,
    broadcast_resume,
    broadcast_schedule,
    broadcast_send_now,
    broadcast_test_send,
    broadcast_unschedule,
)
from tests.automations.factories import AutomationRuleFactory, EmailTemplateFactory
from tests.customers.factories import CustomerFactory

from .conftest import customers_with_consent

pytestmark = pytest.mark.django_db


def actions(broadcast) -> list[str]:
    return list(broadcast.audit.order_by("created_at", "id").values_list("action", flat=True))


def items_of(broadcast):
    return EmailQueueItem.objects.filter(step__rule__broadcast=broadcast)


# --- creating -------------------------------------------------------------------------------------------------------


def test_subject_variants_are_copies_of_the_template_with_another_subject(make_broadcast, template, marketing_user):
    broadcast = make_broadcast(
        name="Summer", subject_variants=["Big news", "Read this, {{ customer.first_name }}"], created_by=marketing_user
    )
    variants = list(broadcast.variants.select_related("template").order_by("label"))
    assert [v.label for v in variants] == ["A", "B", "C"]
    assert variants[0].template == template
    assert [v.template.subject for v in variants[1:]] == ["Big news", "Read this, {{ customer.first_name }}"]
    assert variants[1].template.name == f"Summer update [broadcast {broadcast.pk} B]"
    assert {v.template.html_body for v in variants} == {template.html_body}
    assert broadcast.status == BroadcastStatus.DRAFT
    assert broadcast.audit.get().actor == marketing_user and actions(broadcast) == ["created"]


def test_template_variants_are_used_as_they_are(make_broadcast):
    other = EmailTemplateFactory(name="Other layout")
    broadcast = make_broadcast(variant_templates=[other])
    assert [v.template for v in broadcast.variants.order_by("label")][1] == other


@pytest.mark.parametrize(
    "change, message",
    [
        ({"template": "transactional"}, "transactional template"),
        ({"template": "retired"}, "retired"),
        ({"subject_variants": ["a", "b", "c", "d"]}, "at most four"),
        ({"subject_variants": ["  "]}, "empty"),
        ({"subject_variants": ["{{ unclosed"]}, "Subject B cannot be used"),
    ],
)
def test_a_broadcast_that_cannot_be_sent_is_refused_at_creation(make_broadcast, change, message):
    if change.get("template") == "transactional":
        change["template"] = EmailTemplateFactory(category=TemplateCategory.TRANSACTIONAL)
    elif change.get("template") == "retired":
        change["template"] = EmailTemplateFactory(retired=True)
    with pytest.raises(BroadcastRefused, match=message):
        make_broadcast(**change)
    assert not Broadcast.objects.exists()


def test_ignoring_the_cap_needs_a_reason_and_is_audited(make_broadcast, marketing_user, start):
    broadcast = make_broadcast()
    with pytest.raises(BroadcastRefused, match="Say why"):
        broadcast_cap_override_set(broadcast=broadcast, ignore=True, reason=" ", actor=marketing_user)
    broadcast_cap_override_set(broadcast=broadcast, ignore=True, reason="Security notice", actor=marketing_user)
    broadcast.refresh_from_db()
    assert broadcast.ignore_frequency_cap
    assert broadcast.frequency_cap_override_reason == f"{marketing_user.username}: Security notice"
    assert broadcast.audit.filter(action="frequency cap ignored", detail="Security notice").exists()
    customers_with_consent(2)
    start(broadcast)
    assert {item.frequency_cap_override for item in items_of(broadcast)} == {
        f"Broadcast {broadcast.name}: {marketing_user.username}: Security notice"
    }
    with pytest.raises(BroadcastRefused, match="cannot be changed"):
        broadcast_cap_override_set(broadcast=broadcast, ignore=False, reason="", actor=marketing_user)


# --- the state machine ----------------------------------------------------------------------------------------------


def test_schedule_unschedule_and_what_is_refused(make_broadcast, marketing_user):
    broadcast = make_broadcast()
    with pytest.raises(BroadcastRefused, match="future"):
        broadcast_schedule(broadcast=broadcast, at=timezone.now() - timedelta(minutes=1), actor=marketing_user)
    at = timezone.now() + timedelta(hours=2)
    broadcast_schedule(broadcast=broadcast, at=at, actor=marketing_user)
    broadcast.refresh_from_db()
    assert (broadcast.status, broadcast.scheduled_at) == (BroadcastStatus.SCHEDULED, at)
    broadcast_unschedule(broadcast=broadcast, actor=marketing_user)
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.DRAFT and broadcast.scheduled_at is None
    with pytest.raises(BroadcastRefused, match="draft cannot be unscheduled"):
        broadcast_unschedule(broadcast=broadcast, actor=marketing_user)
    with pytest.raises(BroadcastRefused, match="cannot be paused"):
        broadcast_pause(broadcast=broadcast, actor=marketing_user)
    assert broadcast_cancel(broadcast=broadcast, actor=marketing_user) == 0
    with pytest.raises(BroadcastRefused, match="cancelled cannot be resumed"):
        broadcast_resume(broadcast=broadcast, actor=marketing_user)
    with pytest.raises(BroadcastRefused, match="cancelled cannot be sent"):
        broadcast_send_now(broadcast=broadcast, actor=marketing_user)
    assert actions(broadcast) == ["created", "scheduled", "unscheduled", "cancelled"]


def test_send_now_queues_one_email_per_recipient_through_a_hidden_rule(make_broadcast, start, marketing_user):
    fans = customers_with_consent(3)
    CustomerFactory(opt_in_confirmed=False)  # no consent: not in the audience
    broadcast = start(make_broadcast(), actor=marketing_user)

    assert broadcast.status == BroadcastStatus.SENDING
    assert broadcast.audience_at_start == broadcast.queued_count == 3
    rule = broadcast.rule
    assert rule.sends_broadcast and not rule.enabled and rule.topic == broadcast.topic
    assert rule.resume_skip_after == timedelta(days=7)
    assert list(rule.steps.values_list("order", "template__name")) == [(1, "Summer update")]
    items = items_of(broadcast)
    assert sorted(items.values_list("customer_id", flat=True)) == sorted(c.pk for c in fans)
    assert {i.idempotency_key for i in items} == {f"email:broadcast-{broadcast.pk}:customer-{c.pk}" for c in fans}
    assert {i.enrollment.scope_key for i in items} == {f"broadcast:{broadcast.pk}"}
    assert set(BroadcastRecipient.objects.filter(broadcast=broadcast).values_list("phase", flat=True)) == {"all"}
    assert actions(broadcast) == ["created", "started", "queued"]

    with pytest.raises(BroadcastRefused, match="sending cannot be sent"):
        broadcast_send_now(broadcast=broadcast, actor=marketing_user)


def test_running_the_enqueue_again_queues_nobody_twice(make_broadcast, start, no_drain_wakeups):
    customers_with_consent(5)
    broadcast = start(make_broadcast())
    Broadcast.objects.filter(pk=broadcast.pk).update(status=BroadcastStatus.QUEUING)  # as a retried task finds it
    assert broadcast_enqueue(broadcast.pk) == 0
    assert broadcast_enqueue(broadcast.pk, chunk_size=2) == 0
    assert items_of(broadcast).count() == 5 == Broadcast.objects.get(pk=broadcast.pk).queued_count


def test_a_crash_midway_is_finished_by_the_next_run_without_a_second_email(
    make_broadcast, monkeypatch, run_on_commit, no_drain_wakeups
):
    customers_with_consent(7)
    broadcast = make_broadcast()
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(broadcast_tasks, "broadcast_enqueue", lambda *args, **kwargs: 0)  # the worker never runs it
        with run_on_commit():
            broadcast_send_now(broadcast=broadcast, actor=None)
    real_queue = broadcast_tasks.bulk_send_queue
    calls = []

    def crash_on_the_third_chunk(**kwargs):
        calls.append(len(kwargs["recipients"]))
        if len(calls) == 3:
            real_queue(**kwargs)  # written, then the worker dies before its commit
            raise RuntimeError("worker killed")
        return real_queue(**kwargs)

    monkeypatch.setattr(broadcast_tasks, "bulk_send_queue", crash_on_the_third_chunk)
    with pytest.raises(RuntimeError):
        broadcast_enqueue(broadcast.pk, chunk_size=2)
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.QUEUING
    assert items_of(broadcast).count() == 4 == broadcast.queued_count  # two chunks committed, the third rolled back

    monkeypatch.setattr(broadcast_tasks, "bulk_send_queue", real_queue)
    assert broadcast_enqueue(broadcast.pk, chunk_size=2) == 3
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SENDING and broadcast.queued_count == 7
    per_customer = items_of(broadcast).values_list("customer_id", flat=True)
    assert len(per_customer) == len(set(per_customer)) == 7


def test_pause_holds_resume_releases_and_the_tick_marks_it_sent(make_broadcast, start, drain, marketing_user):
    customers_with_consent(3)
    broadcast = start(make_broadcast())
    broadcast_pause(broadcast=broadcast, actor=marketing_user, reason="Typo in the link")
    assert set(items_of(broadcast).values_list("status", flat=True)) == {QueueStatus.PAUSED}
    drain()
    assert not items_of(broadcast).filter(status=QueueStatus.SENT).exists() and mail.outbox == []
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.PAUSED
    with pytest.raises(BroadcastRefused, match="paused cannot be paused"):
        broadcast_pause(broadcast=broadcast, actor=marketing_user)

    broadcast_resume(broadcast=broadcast, actor=marketing_user)  # the enqueue finishes on commit (not run here)
    broadcast_enqueue(broadcast.pk)
    drain()
    assert items_of(broadcast).filter(status=QueueStatus.SENT).count() == 3 and len(mail.outbox) == 3
    broadcasts_tick()
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SENT and broadcast.finished_at is not None
    assert actions(broadcast) == ["created", "started", "queued", "paused", "resumed", "queued", "sent"]
    paused = broadcast.audit.get(action="paused")
    assert paused.actor == marketing_user and "Typo in the link" in paused.detail and "3 email(s) held" in paused.detail


def test_cancel_cancels_every_unsent_email(make_broadcast, start, drain, marketing_user):
    customers_with_consent(4)
    broadcast = start(make_broadcast())
    first = items_of(broadcast).order_by("pk").first()
    EmailQueueItem.objects.filter(pk=first.pk).update(status=QueueStatus.SENT, sent_at=timezone.now())
    assert broadcast_cancel(broadcast=broadcast, actor=marketing_user) == 3
    drain()
    assert mail.outbox == []
    assert items_of(broadcast).filter(status=QueueStatus.CANCELLED).count() == 3
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.CANCELLED
    with pytest.raises(BroadcastRefused, match="cancelled cannot be resumed"):
        broadcast_resume(broadcast=broadcast, actor=marketing_user)
    assert broadcast.audit.get(action="cancelled").detail == "3 unsent email(s) cancelled"


def test_the_tick_starts_a_due_scheduled_broadcast(make_broadcast, run_on_commit, marketing_user, no_drain_wakeups):
    customers_with_consent(2)
    broadcast = make_broadcast()
    broadcast_schedule(broadcast=broadcast, at=timezone.now() + timedelta(minutes=5), actor=marketing_user)
    with run_on_commit():
        assert broadcasts_tick()["started"] == 0
    Broadcast.objects.filter(pk=broadcast.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))
    with run_on_commit():
        assert broadcasts_tick()["started"] == 1
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SENDING and broadcast.queued_count == 2
    started = broadcast.audit.get(action="started")
    assert (started.actor_name, started.actor, started.detail) == ("system", None, "as scheduled")


def test_the_tick_is_a_one_minute_schedule():
    job = next(job for job in declared_jobs() if job.func == "marketing.broadcast_tasks.broadcasts_tick")
    assert job.cron == "* * * * *"


# --- test send, timeline, hidden rule ---------------------------------------------------------------------------------


def test_a_test_goes_to_staff_only_once_per_variant(make_broadcast, marketing_user, settings):
    settings.MARKETING_FROM_EMAIL = "ModReady News <news@news.modready.example>"
    broadcast = make_broadcast(subject_variants=["Other subject"])
    customer = CustomerFactory(name="Robin Doe")
    with pytest.raises(BroadcastRefused, match="staff member"):
        broadcast_test_send(broadcast=broadcast, to=customer.email, customer=customer, actor=marketing_user)
    broadcast_test_send(broadcast=broadcast, to=marketing_user.email, customer=customer, actor=marketing_user)
    assert [m.subject for m in mail.outbox] == ["[Test] News for Robin", "[Test] Other subject"]
    assert {tuple(m.to) for m in mail.outbox} == {(marketing_user.email,)}
    # From marketing's own address, as the broadcast itself will be.
    assert {m.from_email for m in mail.outbox} == {"ModReady News <news@news.modready.example>"}
    assert broadcast.audit.filter(action="test sent").count() == 1
    broadcast_test_send(broadcast=broadcast, to=marketing_user.email, customer=None, actor=marketing_user)
    with pytest.raises(BroadcastRefused, match="wait a minute"):  # five a minute: 2 + 2 + 1, then refused
        broadcast_test_send(broadcast=broadcast, to=marketing_user.email, customer=None, actor=marketing_user)


def test_a_sent_broadcast_email_is_on_the_customers_timeline(make_broadcast, start, drain, resend):
    fan = customers_with_consent(1)[0]
    broadcast = start(make_broadcast())
    drain()
    entry = TimelineEvent.objects.get(customer=fan, kind="email.sent")
    assert entry.summary == "Sent Summer update: News for Fan"
    assert entry.payload["queue_item_id"] == items_of(broadcast).get().pk
    assert [email.to for email in resend.delivered] == [[fan.email]]


def test_the_hidden_rule_is_not_listed_with_the_rules(make_broadcast, start, admin_client):
    ordinary = AutomationRuleFactory(name="Welcome series")
    customers_with_consent(1)
    broadcast = start(make_broadcast())
    page = admin_client.get(reverse("admin:automations_automationrule_changelist"))
    assert page.status_code == 200
    listed = {rule.pk for rule in page.context["cl"].result_list}
    assert broadcast.rule_id not in listed and ordinary.pk in listed
    assert listed == set(AutomationRule.objects.filter(sends_broadcast=False).values_list("pk", flat=True))
    analytics = admin_client.get(reverse("admin:automations_analytics"))
    assert broadcast.rule not in list(analytics.context["rules"])
