"""Writes of broadcasts (marketing/broadcast_models.py): create, the frequency-cap override, schedule, send, pause,
resume, cancel and the staff test send. Each change is checked against the broadcast's status (a refused one raises
BroadcastRefused with the reason in staff's words) and written to the broadcast's audit in the same transaction;
tasks leave on commit.

Sending goes through automations' queue: starting creates the hidden rule (automations.services.bulk_sends), and
marketing.broadcast_tasks.broadcast_enqueue queues the recipients. Pause and resume are the rule's
(automations.rule_pause); cancel cancels the rule's unsent emails.
"""

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from automations.models import EmailTemplate, TemplateCategory, WhenHeld
from automations.rule_pause import rule_pause, rule_resume
from automations.services.bulk_sends import bulk_send_cancel, bulk_send_rule_create, bulk_send_template_copy
from customers.models import Topic

from .broadcast_models import Broadcast, BroadcastAuditEntry, BroadcastStatus, BroadcastVariant
from .models import Segment

LABELS = "ABCD"
SYSTEM = "system"
# A resumed broadcast still sends emails held for days (a rule's default is two days).
BROADCAST_RESUME_SKIP_AFTER = timedelta(days=7)
PAUSABLE = (BroadcastStatus.QUEUING, BroadcastStatus.SENDING, BroadcastStatus.TESTING)
CANCELLABLE = (BroadcastStatus.DRAFT, BroadcastStatus.SCHEDULED, *PAUSABLE, BroadcastStatus.PAUSED)
EDITABLE = (BroadcastStatus.DRAFT, BroadcastStatus.SCHEDULED)


class BroadcastRefused(Exception):
    """The action is not allowed now; the message says why, in staff's words."""


def actor_label(actor) -> str:
    return actor.get_username() if actor is not None else SYSTEM


def broadcast_audit(*, broadcast: Broadcast, actor, action: str, detail: str = "", actor_name: str = "") -> None:
    BroadcastAuditEntry.objects.create(
        broadcast=broadcast,
        actor=actor,
        actor_name=(actor_name or actor_label(actor))[:150],
        action=action[:40],
        detail=detail[:500],
    )


def _locked(broadcast: Broadcast) -> Broadcast:
    """The broadcast's row, locked for this transaction: every state change goes through here, so two changes (a
    double click, the tick and a staff member) are made one after the other, each seeing the other's result."""
    return Broadcast.objects.select_for_update().get(pk=broadcast.pk)


def _refuse_unless(broadcast: Broadcast, allowed, action: str) -> None:
    if broadcast.status not in allowed:
        raise BroadcastRefused(f"A broadcast that is {broadcast.get_status_display().lower()} cannot be {action}.")


def _check_template(template: EmailTemplate) -> None:
    if template.category != TemplateCategory.MARKETING:
        raise BroadcastRefused(f"{template.name} is a transactional template: a broadcast sends marketing email.")
    if template.retired:
        raise BroadcastRefused(f"{template.name} is retired.")


@transaction.atomic
def broadcast_create(
    *,
    name: str,
    topic: Topic,
    segment: Segment,
    template: EmailTemplate,
    subject_variants: list[str] | None = None,
    variant_templates: list[EmailTemplate] | None = None,
    when_held: str = WhenHeld.DEFER,
    test_share_percent: int = 20,
    test_wait: timedelta = timedelta(hours=4),
    created_by=None,
) -> Broadcast:
    """A draft broadcast with its variants: A is `template`; each extra subject makes a copy of it with that subject,
    each extra template is a variant of its own (B, C, D in that order). One to four variants."""
    subjects = [subject.strip() for subject in subject_variants or []]
    others = list(variant_templates or [])
    if any(not subject for subject in subjects):
        raise BroadcastRefused("A subject variant is empty.")
    if 1 + len(subjects) + len(others) > len(LABELS):
        raise BroadcastRefused("A broadcast has at most four variants (A and three more).")
    if topic.archived:
        raise BroadcastRefused(f"The topic {topic.name} is archived.")
    if not 1 <= test_share_percent <= 100:
        raise BroadcastRefused("The A/B test share is a percentage from 1 to 100.")
    if test_wait <= timedelta(0):
        raise BroadcastRefused("The A/B test needs a wait longer than zero.")
    for candidate in [template, *others]:
        _check_template(candidate)
    if Broadcast.objects.filter(name=name).exists():
        raise BroadcastRefused(f"A broadcast named {name!r} exists already.")
    broadcast = Broadcast.objects.create(
        name=name,
        topic=topic,
        segment=segment,
        when_held=when_held,
        test_share_percent=test_share_percent,
        test_wait=test_wait,
        created_by=created_by,
    )
    templates = [template]
    for label, subject in zip(LABELS[1:], subjects, strict=False):
        copy_name = f"{template.name} [broadcast {broadcast.pk} {label}]"
        try:
            templates.append(bulk_send_template_copy(template=template, name=copy_name, subject=subject))
        except ValidationError as exc:  # the template form's checks: a subject that does not compile
            raise BroadcastRefused(f"Subject {label} cannot be used: {'; '.join(exc.messages)}") from exc
    templates.extend(others)
    BroadcastVariant.objects.bulk_create(
        [
            BroadcastVariant(broadcast=broadcast, label=label, template=t)
            for label, t in zip(LABELS, templates, strict=False)
        ]
    )
    detail = f"{len(templates)} variant(s); segment {segment.name}; topic {topic.name}"
    broadcast_audit(broadcast=broadcast, actor=created_by, action="created", detail=detail)
    return broadcast


@transaction.atomic
def broadcast_cap_override_set(*, broadcast: Broadcast, ignore: bool, reason: str, actor) -> None:
    """A critical announcement may ignore the frequency cap (never consent, topics, suppressions or quiet hours); who
    and why is kept on the broadcast, in its audit and on each of its emails."""
    broadcast = _locked(broadcast)
    _refuse_unless(broadcast, EDITABLE, "changed")
    reason = reason.strip()
    if ignore and not reason:
        raise BroadcastRefused("Say why this broadcast may ignore the frequency cap.")
    broadcast.ignore_frequency_cap = ignore
    broadcast.frequency_cap_override_reason = f"{actor_label(actor)}: {reason}"[:300] if ignore else ""
    broadcast.save(update_fields=["ignore_frequency_cap", "frequency_cap_override_reason", "updated_at"])
    action = "frequency cap ignored" if ignore else "frequency cap applies"
    broadcast_audit(broadcast=broadcast, actor=actor, action=action, detail=reason)


@transaction.atomic
def broadcast_schedule(*, broadcast: Broadcast, at: datetime, actor) -> None:
    broadcast = _locked(broadcast)
    _refuse_unless(broadcast, EDITABLE, "scheduled")
    if at <= timezone.now():
        raise BroadcastRefused("Choose a moment in the future (or send it now).")
    broadcast.status, broadcast.scheduled_at = BroadcastStatus.SCHEDULED, at
    broadcast.save(update_fields=["status", "scheduled_at", "updated_at"])
    broadcast_audit(broadcast=broadcast, actor=actor, action="scheduled", detail=f"for {at:%Y-%m-%d %H:%M} UTC")


@transaction.atomic
def broadcast_unschedule(*, broadcast: Broadcast, actor) -> None:
    broadcast = _locked(broadcast)
    _refuse_unless(broadcast, (BroadcastStatus.SCHEDULED,), "unscheduled")
    broadcast.status, broadcast.scheduled_at = BroadcastStatus.DRAFT, None
    broadcast.save(update_fields=["status", "scheduled_at", "updated_at"])
    broadcast_audit(broadcast=broadcast, actor=actor, action="unscheduled")


def broadcast_enqueue_later(broadcast_id: int) -> None:
    """Ask the task queue to queue the broadcast's recipients (after commit)."""
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task(
            "marketing.broadcast_tasks.broadcast_enqueue", broadcast_id, task_name=f"marketing:broadcast-{broadcast_id}"
        )
    )


@transaction.atomic
def broadcast_send_now(*, broadcast: Broadcast, actor, actor_name: str = "") -> None:
    """Start sending: make the hidden rule and queue the recipients (a task, on commit). A second click finds the
    broadcast started and is refused; the queuing itself is idempotent besides."""
    broadcast = _locked(broadcast)
    _refuse_unless(broadcast, EDITABLE, "sent")
    scheduled = broadcast.status == BroadcastStatus.SCHEDULED and actor is None
    variants = list(broadcast.variants.select_related("template").order_by("label"))
    for variant in variants:
        _check_template(variant.template)
    broadcast.rule = bulk_send_rule_create(
        name=f"Broadcast: {broadcast.name}",
        topic=broadcast.topic,
        when_held=broadcast.when_held,
        templates=[variant.template for variant in variants],
        resume_skip_after=BROADCAST_RESUME_SKIP_AFTER,
    )
    broadcast.status, broadcast.started_at = BroadcastStatus.QUEUING, timezone.now()
    broadcast.save(update_fields=["rule", "status", "started_at", "updated_at"])
    broadcast_audit(
        broadcast=broadcast,
        actor=actor,
        action="started",
        detail="as scheduled" if scheduled else "",
        actor_name=actor_name,
    )
    broadcast_enqueue_later(broadcast.pk)


@transaction.atomic
def broadcast_pause(
    *, broadcast: Broadcast, actor, reason: str = "", actor_name: str = "", guard_note: str = ""
) -> None:
    """Hold every unsent email of the broadcast (the rule's pause). `guard_note`: the deliverability guard's figures."""
    broadcast = _locked(broadcast)
    _refuse_unless(broadcast, PAUSABLE, "paused")
    name = actor_name or actor_label(actor)
    held = rule_pause(rule_id=broadcast.rule_id, by=name) or 0
    broadcast.status, broadcast.guard_note = BroadcastStatus.PAUSED, guard_note[:500]
    broadcast.save(update_fields=["status", "guard_note", "updated_at"])
    detail = "; ".join(part for part in [reason.strip(), guard_note, f"{held} email(s) held"] if part)
    broadcast_audit(broadcast=broadcast, actor=actor, action="paused", detail=detail, actor_name=name)


@transaction.atomic
def broadcast_resume(*, broadcast: Broadcast, actor) -> None:
    """Release the held emails (the rule's resume) and finish queuing (the queuing is idempotent, so it completes
    what a pause or a crash interrupted and adds nobody twice)."""
    broadcast = _locked(broadcast)
    _refuse_unless(broadcast, (BroadcastStatus.PAUSED,), "resumed")
    resumed = rule_resume(rule_id=broadcast.rule_id, by=actor_label(actor))
    broadcast.status, broadcast.guard_note = BroadcastStatus.QUEUING, ""
    broadcast.save(update_fields=["status", "guard_note", "updated_at"])
    detail = f"{resumed.released} released, {resumed.skipped} skipped" if resumed else ""
    broadcast_audit(broadcast=broadcast, actor=actor, action="resumed", detail=detail)
    broadcast_enqueue_later(broadcast.pk)


@transaction.atomic
def broadcast_cancel(*, broadcast: Broadcast, actor) -> int:
    """Stop the broadcast for good: its pending and held emails are cancelled (those already handed to the provider
    are not). Returns how many were cancelled."""
    broadcast = _locked(broadcast)
    _refuse_unless(broadcast, CANCELLABLE, "cancelled")
    cancelled = 0
    if broadcast.rule_id:
        reason = f"Broadcast cancelled by {actor_label(actor)}"
        cancelled = bulk_send_cancel(rule_id=broadcast.rule_id, reason=reason)
    broadcast.status, broadcast.finished_at = BroadcastStatus.CANCELLED, timezone.now()
    broadcast.save(update_fields=["status", "finished_at", "updated_at"])
    broadcast_audit(
        broadcast=broadcast, actor=actor, action="cancelled", detail=f"{cancelled} unsent email(s) cancelled"
    )
    return cancelled


def broadcast_test_send(*, broadcast: Broadcast, to: str, customer=None, actor) -> list[str]:
    """Each variant's email to one staff address (never a customer's), rendered for `customer` or the sample
    customer, subject prefixed "[Test] ". Counts against the sender's test-send limit (automations'). Returns the
    provider's message ids."""
    from automations.drain import send_test_email
    from automations.rendering import render_email
    from automations.services.test_sends import TEST_SENDS_PER_MINUTE, staff_test_send_failed, staff_test_send_reserve
    from integrations.email_transport import SendError

    from .broadcast_figures import preview_context

    if actor is None or not get_user_model().objects.filter(email__iexact=to.strip(), is_staff=True).exists():
        raise BroadcastRefused("A test goes only to a staff member's own address.")
    context = preview_context(customer=customer)
    message_ids = []
    for variant in broadcast.variants.select_related("template").order_by("label"):
        reservation = staff_test_send_reserve(user=actor, template=variant.template)
        if reservation is None:
            raise BroadcastRefused(f"You sent {TEST_SENDS_PER_MINUTE} tests in the last minute; wait a minute.")
        try:
            rendered = render_email(template=variant.template, context=context)
            message_ids.append(send_test_email(to=to.strip(), rendered=rendered, marketing=True))
        except SendError as exc:
            staff_test_send_failed(test_send=reservation, error=str(exc))
            raise BroadcastRefused(f"The test of variant {variant.label} could not be sent: {exc}") from exc
    labels = ", ".join(broadcast.variants.order_by("label").values_list("label", flat=True))
    broadcast_audit(broadcast=broadcast, actor=actor, action="test sent", detail=f"variants {labels} to {to.strip()}")
    return message_ids
