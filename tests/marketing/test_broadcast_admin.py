"""Marketing composes and runs broadcasts in the admin: compose with the live count and an A/B subject, each button
of the broadcast's page goes through its service and says what it did, a refused action is a message (never a 500),
and Support cannot reach any of it."""

import re
from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from automations.models import EmailQueueItem, QueueStatus
from customers.models import Topic
from marketing.audience import segment_audience
from marketing.broadcast_figures import broadcast_figures
from marketing.broadcast_models import Broadcast, BroadcastAuditEntry, BroadcastStatus
from marketing.broadcasts import broadcast_create
from tests.automations.factories import EmailTemplateFactory
from tests.customers.factories import CustomerFactory
from tests.marketing.factories import segment_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def topic():
    import_module("customers.migrations.0013_topics_and_consent").create_default_topics(apps, None)
    return Topic.objects.get(slug="product-news")


@pytest.fixture
def template():
    return EmailTemplateFactory(
        name="Frankfurt is live", category="marketing", subject="Frankfurt is live, {{ customer.first_name }}"
    )


@pytest.fixture
def segment():
    for n in range(3):
        CustomerFactory(name=f"Active {n}", lifecycle_stage="active", opt_in_confirmed=True)
    CustomerFactory(name="Active, no consent", lifecycle_stage="active")
    CustomerFactory(name="On trial", lifecycle_stage="trial", opt_in_confirmed=True)
    return segment_with(("lifecycle_stage", "one_of", ["active"]), name="Active players")


@pytest.fixture
def draft(topic, template, segment, marketing_user):
    return broadcast_create(
        name="Frankfurt", topic=topic, segment=segment, template=template, created_by=marketing_user
    )


def compose_data(topic, segment, template, **extra) -> dict:
    data = {
        "name": "Frankfurt launch",
        "topic": topic.pk,
        "segment": segment.pk,
        "template": template.pk,
        "when_held": "defer",
        "test_share_percent": "20",
        "test_wait": "4 hours",
        "frequency_cap_override_reason": "",
    }
    return {**data, **extra}


def page_of(client, broadcast) -> str:
    response = client.get(reverse("admin:marketing_broadcast_change", args=[broadcast.pk]))
    assert response.status_code == 200
    return response.content.decode()


def act(client, broadcast, action: str, data: dict | None = None):
    """Press a button of the broadcast's page and follow its redirect, as the browser does."""
    return client.post(reverse("admin:marketing_broadcast_act", args=[broadcast.pk, action]), data or {}, follow=True)


def said(response) -> list[str]:
    """The messages the page shows after the button (each request's own: shown once, then gone)."""
    assert response.status_code == 200, response.status_code
    return [str(message) for message in response.context["messages"]]


def figure(page: str, row: str, name: str) -> int:
    row_html = re.search(rf'<tr data-row="{row}">(.*?)</tr>', page, re.S).group(1)
    return int(re.search(rf'data-figure="{name}">(\d+)<', row_html).group(1))


def test_marketing_composes_a_broadcast_with_an_ab_subject(client, marketing_user, topic, template, segment):
    retired = EmailTemplateFactory(name="Old news", category="marketing", retired=True)
    receipt = EmailTemplateFactory(name="Receipt", category="transactional")
    client.force_login(marketing_user)
    url = reverse("admin:marketing_broadcast_add")
    form_page = client.get(url).content.decode()
    assert "Frankfurt is live" in form_page
    assert 'name="test_wait" value="4 hours"' in form_page  # the defaults, in words
    assert retired.name not in form_page and receipt.name not in form_page

    counted = client.post(url, compose_data(topic, segment, template, subject_b="Frankfurt: lower ping", _count="1"))
    expected = segment_audience(segment=segment, topic=topic, at=timezone.now()).count()
    assert expected == 3
    assert f'data-compose-audience="{expected}"' in counted.content.decode()
    assert "No A/B test: 20% of 3 recipients split 2 ways is 0 per variant" in counted.content.decode()
    assert not Broadcast.objects.exists()  # counting saves nothing

    response = client.post(url, compose_data(topic, segment, template, subject_b="Frankfurt: lower ping"))
    broadcast = Broadcast.objects.get(name="Frankfurt launch")
    assert response.status_code == 302 and response.url == reverse(
        "admin:marketing_broadcast_change", args=[broadcast.pk]
    )
    assert broadcast.status == BroadcastStatus.DRAFT and broadcast.created_by == marketing_user
    variants = list(broadcast.variants.order_by("label").select_related("template"))
    assert [v.label for v in variants] == ["A", "B"]
    assert variants[0].template == template and variants[1].template.subject == "Frankfurt: lower ping"
    page = page_of(client, broadcast)
    assert 'id="broadcast-status">Draft<' in page
    assert f'data-audience="{expected}"' in page
    assert "A/B test: 2 variants" in page
    assert not EmailQueueItem.objects.exists()  # a draft sends nothing


def test_compose_refuses_subjects_and_templates_together_and_a_cap_override_without_reason(
    client, marketing_user, topic, template, segment
):
    other = EmailTemplateFactory(name="Frankfurt, long version", category="marketing")
    client.force_login(marketing_user)
    url = reverse("admin:marketing_broadcast_add")
    both = client.post(url, compose_data(topic, segment, template, subject_b="Short", template_c=other.pk))
    assert both.status_code == 200
    assert "either the subject (extra subjects) or the whole email" in both.content.decode()
    no_reason = client.post(url, compose_data(topic, segment, template, ignore_frequency_cap="on"))
    assert no_reason.status_code == 200
    assert "Say why this broadcast may ignore the frequency cap." in no_reason.content.decode()
    assert not Broadcast.objects.exists()


def test_a_service_refusal_on_compose_is_a_form_error(client, marketing_user, topic, template, segment, draft):
    client.force_login(marketing_user)
    topic.archived = True
    topic.save()
    other = Topic.objects.get(slug="offers")
    response = client.post(
        reverse("admin:marketing_broadcast_add"), compose_data(other, segment, template, name="Frankfurt")
    )
    assert response.status_code == 200
    assert "Broadcast with this Name already exists." in response.content.decode()
    assert Broadcast.objects.count() == 1


def test_the_cap_override_shows_who_and_why(client, marketing_user, topic, template, segment):
    client.force_login(marketing_user)
    data = compose_data(topic, segment, template, ignore_frequency_cap="on")
    data["frequency_cap_override_reason"] = "Maintenance on Sunday: every customer must know"
    client.post(reverse("admin:marketing_broadcast_add"), data)
    broadcast = Broadcast.objects.get()
    assert broadcast.ignore_frequency_cap
    page = page_of(client, broadcast)
    cap = re.search(r'id="cap-override">(.*?)</dd>', page, re.S).group(1)
    assert "Ignored" in cap and "Maintenance on Sunday: every customer must know" in cap
    assert f"set by {marketing_user.get_username()}" in cap
    audit = BroadcastAuditEntry.objects.get(broadcast=broadcast, action="frequency cap ignored")
    assert audit.actor == marketing_user


def test_send_now_pause_resume_and_cancel_each_through_their_service(client, marketing_user, draft, run_on_commit):
    client.force_login(marketing_user)
    with run_on_commit():
        response = act(client, draft, "send_now")
    assert any(m.startswith("Sending started") for m in said(response))
    draft.refresh_from_db()
    assert draft.status in (BroadcastStatus.QUEUING, BroadcastStatus.SENDING)
    assert draft.recipients.count() == 3
    page = page_of(client, draft)
    assert figure(page, "All variants", "recipients") == 3

    response = act(client, draft, "pause", {"reason": "Typo in the subject"})
    assert said(response) == ["Paused: its waiting emails are held and none goes out until it is resumed."]
    draft.refresh_from_db()
    assert draft.status == BroadcastStatus.PAUSED
    page = page_of(client, draft)
    held = EmailQueueItem.objects.filter(broadcast_recipient__broadcast=draft, status=QueueStatus.PAUSED).count()
    assert figure(page, "All variants", "held") == held == broadcast_figures(broadcast=draft).totals.held
    assert 'id="action-resume"' in page and 'id="action-pause"' not in page
    assert "Typo in the subject" in page  # the audit

    with run_on_commit():
        response = act(client, draft, "resume")
    assert said(response)[0].startswith("Resumed")
    draft.refresh_from_db()
    assert draft.status != BroadcastStatus.PAUSED
    assert not EmailQueueItem.objects.filter(broadcast_recipient__broadcast=draft, status=QueueStatus.PAUSED).exists()

    confirm = client.get(reverse("admin:marketing_broadcast_cancel", args=[draft.pk]))
    assert "Yes, cancel the broadcast" in confirm.content.decode()
    unconfirmed = act(client, draft, "cancel")
    assert unconfirmed.redirect_chain == [(reverse("admin:marketing_broadcast_cancel", args=[draft.pk]), 302)]
    draft.refresh_from_db()
    assert draft.status != BroadcastStatus.CANCELLED  # not without the confirm step
    response = act(client, draft, "cancel", {"confirm": "yes"})
    draft.refresh_from_db()
    assert draft.status == BroadcastStatus.CANCELLED
    assert said(response)[0].startswith("Cancelled:")
    assert not EmailQueueItem.objects.filter(
        broadcast_recipient__broadcast=draft, status__in=[QueueStatus.PENDING, QueueStatus.PAUSED]
    ).exists()


def test_schedule_and_unschedule(client, marketing_user, draft):
    client.force_login(marketing_user)
    at = (timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)
    response = act(client, draft, "schedule", {"at": at.strftime("%Y-%m-%dT%H:%M")})
    assert said(response) == [f"Scheduled: sending starts {at:%Y-%m-%d %H:%M} UTC, to the audience of that moment."]
    draft.refresh_from_db()
    assert draft.status == BroadcastStatus.SCHEDULED and draft.scheduled_at == at
    page = page_of(client, draft)
    assert 'id="action-unschedule"' in page and "Reschedule" in page

    response = act(client, draft, "unschedule")
    draft.refresh_from_db()
    assert draft.status == BroadcastStatus.DRAFT
    assert said(response)[0].startswith("Unscheduled")


def test_refused_actions_are_messages_not_errors(client, marketing_user, draft):
    client.force_login(marketing_user)
    response = act(client, draft, "resume")
    assert said(response) == ["Nothing was done: A broadcast that is draft cannot be resumed."]
    past = act(client, draft, "schedule", {"at": "2020-01-01T10:00"})
    assert said(past) == ["Nothing was done: Choose a moment in the future (or send it now)."]
    garbage = act(client, draft, "schedule", {"at": "next tuesday"})
    assert said(garbage)[0].startswith("Nothing was done: Enter a valid date/time")
    cap = act(client, draft, "cap_override", {"ignore": "on", "reason": " "})
    assert said(cap) == ["Nothing was done: Say why this broadcast may ignore the frequency cap."]
    draft.refresh_from_db()
    assert draft.status == BroadcastStatus.DRAFT and not draft.ignore_frequency_cap
    assert client.get(reverse("admin:marketing_broadcast_act", args=[draft.pk, "send_now"])).status_code == 405
    assert client.post(reverse("admin:marketing_broadcast_act", args=[draft.pk, "explode"])).status_code == 404
    for missing in ("999999", "9" * 30, "abc"):  # to the list with a message, as the admin does, never a 500
        assert client.get(f"/admin/marketing/broadcast/{missing}/change/").status_code == 302


def test_send_me_a_test_goes_to_the_staff_member_only(client, marketing_user, draft):
    customer = CustomerFactory(name="Lea Stern", lifecycle_stage="active", opt_in_confirmed=True)
    client.force_login(marketing_user)
    response = act(client, draft, "test_send", {"customer": customer.email})
    assert said(response)[0].startswith(f"1 test email(s), one per variant, sent to {marketing_user.email}")
    (sent,) = mail.outbox
    assert sent.to == [marketing_user.email]
    assert sent.subject == "[Test] Frankfurt is live, Lea"
    assert not EmailQueueItem.objects.exists()
    unknown = act(client, draft, "test_send", {"customer": "nobody@example.com"})
    assert said(unknown)[0].startswith("Nothing was done: No customer with the id or email address")


def test_preview_renders_each_variant_for_a_customer(client, marketing_user, topic, template, segment):
    broadcast = broadcast_create(
        name="Preview", topic=topic, segment=segment, template=template, subject_variants=["<b>Ping</b> for you"]
    )
    customer = CustomerFactory(name="Lea Stern")
    client.force_login(marketing_user)
    page = client.get(
        reverse("admin:marketing_broadcast_preview", args=[broadcast.pk]), {"customer": str(customer.pk)}
    ).content.decode()
    assert "Frankfurt is live, Lea" in page
    assert "&lt;b&gt;Ping&lt;/b&gt; for you" in page  # escaped, never markup of the admin page
    assert page.count("<iframe") == 2 and page.count("sandbox srcdoc=") == 2
    assert "&lt;p&gt;Hi Lea, your server is ready.&lt;/p&gt;" in page  # the HTML only inside the sandboxed srcdoc


def test_the_guard_banner_and_the_ab_note(client, marketing_user, draft):
    Broadcast.objects.filter(pk=draft.pk).update(
        status=BroadcastStatus.PAUSED,
        guard_note="Hard bounces 9 of 150 sent (6.0%), over 4%.",
        ab_note="No A/B test: 20% of 3 recipients split 2 ways is 0 per variant.",
    )
    client.force_login(marketing_user)
    page = page_of(client, draft)
    banner = re.search(r'id="guard-banner"[^>]*>(.*?)</p>', page, re.S).group(1)
    assert "Hard bounces 9 of 150 sent (6.0%), over 4%." in banner
    assert "No A/B test: 20% of 3 recipients" in page


def test_the_list_shows_status_and_progress_and_filters_by_status(client, marketing_user, draft, run_on_commit):
    client.force_login(marketing_user)
    with run_on_commit():
        act(client, draft, "send_now")
    url = reverse("admin:marketing_broadcast_changelist")
    page = client.get(url).content.decode()
    sent = EmailQueueItem.objects.filter(broadcast_recipient__broadcast=draft, status=QueueStatus.SENT).count()
    assert f"{sent} / 3" in page and "Product news" in page and "Active players" in page
    assert "started " in page
    assert "Frankfurt" not in client.get(url, {"status__exact": "draft"}).content.decode().split("result_list")[-1]


def test_support_cannot_reach_broadcasts(client, support_user, draft):
    client.force_login(support_user)
    for url in (
        reverse("admin:marketing_broadcast_changelist"),
        reverse("admin:marketing_broadcast_add"),
        reverse("admin:marketing_broadcast_change", args=[draft.pk]),
        reverse("admin:marketing_broadcast_preview", args=[draft.pk]),
        reverse("admin:marketing_broadcast_cancel", args=[draft.pk]),
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("admin:marketing_broadcast_act", args=[draft.pk, "send_now"])).status_code == 403
    draft.refresh_from_db()
    assert draft.status == BroadcastStatus.DRAFT
