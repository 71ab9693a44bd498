"""Broadcasts: one marketing email (or an A/B test of two to four) sent once to a segment's audience.

A broadcast sends through the automation queue, so every rule of the queue holds for it (consent, suppressions,
topics, the frequency cap, quiet hours, pacing, idempotent batches, tracking, the timeline): starting it creates
one hidden automation rule (`AutomationRule.sends_broadcast`) with one step per variant, and one enrollment and one
queue item per recipient. Pausing, resuming and cancelling it are the rule's pause, resume and cancellation.

`BroadcastRecipient` is the promise "one email per recipient per broadcast, ever": unique per (broadcast, customer),
written in the same transaction as the recipient's queue item, whatever double click, retry or crashed worker
asked for it again.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q

from automations.models import AutomationRule, EmailQueueItem, EmailTemplate, WhenHeld
from customers.models import Customer, Topic

from .models import Segment


class BroadcastStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    # Its recipients are being queued (a task; a crashed worker's run is picked up again by the next one).
    QUEUING = "queuing", "Queuing recipients"
    SENDING = "sending", "Sending"
    # A/B: the test share is out; the rest waits for the winner.
    TESTING = "testing", "A/B test running"
    PAUSED = "paused", "Paused"
    SENT = "sent", "Sent"
    CANCELLED = "cancelled", "Cancelled"


LIVE_BROADCAST_STATUSES = (
    BroadcastStatus.QUEUING,
    BroadcastStatus.SENDING,
    BroadcastStatus.TESTING,
    BroadcastStatus.PAUSED,
)


class Broadcast(models.Model):
    name = models.CharField(max_length=100, unique=True, help_text="For staff only; customers never see it.")
    topic = models.ForeignKey(
        Topic, on_delete=models.PROTECT, related_name="broadcasts", help_text="What the email is about."
    )
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="broadcasts")
    status = models.CharField(max_length=20, choices=BroadcastStatus.choices, default=BroadcastStatus.DRAFT)
    scheduled_at = models.DateTimeField(null=True, blank=True, help_text="When sending starts (scheduled).")
    when_held = models.CharField(
        "when the frequency cap or quiet hours hold an email",
        max_length=10,
        choices=WhenHeld.choices,
        default=WhenHeld.DEFER,
    )
    # A critical announcement may ignore the frequency cap (never consent, topics, suppressions or quiet hours):
    # who allowed it and why is kept here and in the broadcast's audit.
    ignore_frequency_cap = models.BooleanField(default=False)
    frequency_cap_override_reason = models.CharField(max_length=300, blank=True, default="")
    # A/B test: the share of the audience that gets the test (split evenly between the variants), and how long the
    # test runs before the rest get the winner (unique clicks per delivered email).
    test_share_percent = models.PositiveSmallIntegerField(default=20)
    test_wait = models.DurationField(default=timedelta(hours=4))
    # Why an A/B test was not run (an arm under the minimum), or which variant won and on what figures.
    ab_note = models.CharField(max_length=500, blank=True, default="")
    winner = models.ForeignKey(
        "BroadcastVariant", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    # The hidden rule that carries its emails through the queue; made when sending starts.
    rule = models.OneToOneField(
        AutomationRule, on_delete=models.PROTECT, null=True, blank=True, related_name="broadcast", editable=False
    )
    # Set when the deliverability guard paused it (bounce or complaint rate), with the figures; cleared on resume.
    guard_note = models.CharField(max_length=500, blank=True, default="")
    audience_at_start = models.PositiveIntegerField(null=True, blank=True, editable=False)
    queued_count = models.PositiveIntegerField(default=0, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    test_ends_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["scheduled_at"], name="broadcast_due_idx", condition=Q(status="scheduled"))]

    def __str__(self) -> str:
        return self.name


class BroadcastVariant(models.Model):
    """One version of the email: its template (a subject-only variant is a copy of the first with another subject).
    A broadcast without an A/B test has one variant."""

    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(max_length=1, help_text="A, B, C or D.")
    template = models.ForeignKey(EmailTemplate, on_delete=models.PROTECT, related_name="broadcast_variants")

    class Meta:
        ordering = ["broadcast", "label"]
        constraints = [
            models.UniqueConstraint(fields=["broadcast", "label"], name="broadcast_variant_unique_label"),
        ]

    def __str__(self) -> str:
        return f"{self.broadcast.name}, variant {self.label}"


class RecipientPhase(models.TextChoices):
    ALL = "all", "Everyone (no A/B test)"
    TEST = "test", "A/B test share"
    WINNER = "winner", "The rest, with the winner"


class BroadcastRecipient(models.Model):
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="recipients")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="broadcasts_received")
    variant = models.ForeignKey(BroadcastVariant, on_delete=models.PROTECT, related_name="recipients")
    phase = models.CharField(max_length=10, choices=RecipientPhase.choices)
    queue_item = models.OneToOneField(EmailQueueItem, on_delete=models.CASCADE, related_name="broadcast_recipient")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # One email per recipient per broadcast, ever.
            models.UniqueConstraint(fields=["broadcast", "customer"], name="broadcast_recipient_once"),
        ]

    def __str__(self) -> str:
        return f"{self.customer} in {self.broadcast}"


class BroadcastAuditEntry(models.Model):
    """Who did what to a broadcast and when: sent a test, scheduled, started, paused, resumed, cancelled, overrode
    the frequency cap; and what the system did (the guard's pause, the A/B winner)."""

    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="audit")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    actor_name = models.CharField(max_length=150, help_text="The staff member, or 'system'.")
    action = models.CharField(max_length=40)
    detail = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "broadcast audit entries"

    def __str__(self) -> str:
        return f"{self.actor_name}: {self.action}"
