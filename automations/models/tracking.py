"""What came back: tracking events from the provider, and the suppressed addresses."""

from datetime import timedelta

from django.db import models
from django.db.models import Q

from .queue import EmailQueueItem


class EmailEventType(models.TextChoices):
    DELIVERED = "delivered", "Delivered"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"
    DEFERRED = "deferred", "Deferred"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed by Resend"


class BounceType(models.TextChoices):
    # The provider's bounce class (Resend's `bounce.type`, mapped in integrations/resend/tracking.py). Only Permanent
    # means a dead address.
    PERMANENT = "Permanent", "Permanent"
    TRANSIENT = "Transient", "Transient"
    UNDETERMINED = "Undetermined", "Undetermined"


# Transient bounces (mailbox full, greylisting, ...) suppress nothing alone; this many different emails to one
# address bouncing within the window mean the address is not working, and it is suppressed.
SOFT_BOUNCE_LIMIT = 3


SOFT_BOUNCE_WINDOW = timedelta(days=30)


class EmailEvent(models.Model):
    """One tracking event from the provider, stored once per provider event id."""

    queue_item = models.ForeignKey(
        EmailQueueItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    type = models.CharField(max_length=20, choices=EmailEventType.choices)
    occurred_at = models.DateTimeField()
    url = models.URLField(max_length=2000, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    provider_event_id = models.CharField(max_length=255, unique=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    recipient = models.EmailField(max_length=254, blank=True)
    machine_open = models.BooleanField(
        default=False, help_text="An open within AUTOMATIONS_MACHINE_OPEN_SECONDS of delivery: not a person."
    )
    # db_default: rows written by raw SQL (bench/email_analytics.py) need not name the columns.
    bounce_type = models.CharField(
        max_length=20, blank=True, default="", db_default="", help_text="Resend's bounce.type, for bounces."
    )
    detail = models.CharField(
        max_length=500,
        blank=True,
        default="",
        db_default="",
        help_text="What Resend said: the bounce, failure or suppression message.",
    )
    payload = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["queue_item", "type"], name="email_event_item_type_idx"),
            # Events that came before we knew their message id, waiting to be linked.
            models.Index(fields=["received_at"], name="email_event_unlinked_idx", condition=Q(queue_item=None)),
            # Transient bounces per address over the last 30 days (three suppress the address).
            models.Index(
                fields=["recipient", "occurred_at"], name="email_event_bounce_idx", condition=Q(type="bounced")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} at {self.occurred_at:%Y-%m-%d %H:%M}"


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    SOFT_BOUNCES = "soft_bounces", "Repeated transient bounces"
    COMPLAINT = "complaint", "Spam complaint"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
    MANUAL = "manual", "Added by staff"


# An unsubscribe stops marketing only: a customer who unsubscribed still needs to hear that their payment failed.
# Bounces, complaints and staff suppressions stop everything.
SUPPRESSES_TRANSACTIONAL = (
    SuppressionReason.HARD_BOUNCE,
    SuppressionReason.SOFT_BOUNCES,
    SuppressionReason.COMPLAINT,
    SuppressionReason.MANUAL,
)


class Suppression(models.Model):
    email = models.EmailField(max_length=254)
    reason = models.CharField(max_length=20, choices=SuppressionReason.choices)
    queue_item = models.ForeignKey(EmailQueueItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["email", "reason"], name="suppression_unique_per_reason")]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_reason_display()})"

    def save(self, *args, **kwargs):
        # Addresses are compared lower-case everywhere (customers normalise the same way).
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)
