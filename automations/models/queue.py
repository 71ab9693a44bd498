"""The email queue: one row per email to send, and the batches (one provider call each) that carry them."""

from django.db import models
from django.db.models import Q

from customers.models import Customer

from .flows import AutomationStep, Enrollment


class QueueStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # Refused by the queue for its address or consent (automations/email_state.py); last_error says why.
    SUPPRESSED = "suppressed", "Blocked"
    # Held because its rule is paused; back to pending, or skipped with a reason, when the rule is resumed.
    PAUSED = "held", "Paused"
    # Handed to the provider in a call whose outcome never became known (its idempotency window ran out, or the
    # provider said the key was used with another payload). It may have been delivered; the queue never sends it
    # again.
    UNCONFIRMED = "unconfirmed", "Outcome unknown"


FINAL_QUEUE_STATUSES = (
    QueueStatus.SENT,
    QueueStatus.FAILED,
    QueueStatus.CANCELLED,
    QueueStatus.SUPPRESSED,
    QueueStatus.UNCONFIRMED,
)


class BatchStatus(models.TextChoices):
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SPLIT = "split", "Split (refused, items re-batched)"
    RELEASED = "released", "Released (refused for our configuration; emails back in the queue)"
    UNCONFIRMED = "unconfirmed", "Outcome unknown (see last error)"


class EmailBatch(models.Model):
    """One provider call: which items go into it, the exact request, and its idempotency key, recorded before the call.

    A worker that dies after the provider accepted the call and before our commit leaves the batch `sending` with an
    expired lease; the next worker sends the same stored messages with the same key, and the provider answers with
    the first result instead of sending again.
    """

    idempotency_key = models.CharField(max_length=255, unique=True, help_text="Ours: email-batch:<id>.")
    # What goes in the Idempotency-Key header: the batch key, or for a batch of one email that email's own key, so
    # every resend of one email within the provider's key window is recognised, whichever batch carries it.
    provider_idempotency_key = models.CharField(max_length=255)
    status = models.CharField(max_length=20, choices=BatchStatus.choices, default=BatchStatus.SENDING)
    messages = models.JSONField(help_text='The rendered messages: [{"item_id": ..., "message": {Resend fields}}].')
    attempts = models.PositiveIntegerField(default=0)
    # Set when a worker takes the batch to make the call, cleared when the answer is recorded. Found still set by the
    # next worker, it means a worker died mid-call: the provider may have sent the batch.
    call_in_progress = models.BooleanField(default=False)
    # Once a call may have been accepted (timeout, dropped connection, dead worker), the batch is only ever re-sent
    # exactly as stored, under its key. Until then, emails whose sequence has ended since can still be taken out.
    possibly_accepted = models.BooleanField(default=False)
    # The first call: the provider remembers the key from about then (Resend: 24 hours), so retries stop before that.
    first_called_at = models.DateTimeField(null=True, blank=True)
    # The provider's error name from the last refusal (SendError.name), for the admin's filter.
    error_name = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(db_index=True)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    worker = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "email batches"
        indexes = [models.Index(fields=["lease_expires_at"], name="batch_in_flight_idx", condition=Q(status="sending"))]

    def __str__(self) -> str:
        return self.idempotency_key


class EmailQueueItem(models.Model):
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="queue_items")
    step = models.ForeignKey(AutomationStep, on_delete=models.PROTECT, related_name="queue_items")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="email_queue_items")
    recipient = models.EmailField(max_length=254)
    scheduled_at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=QueueStatus.choices, default=QueueStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(help_text="When the queue may next take this item.")
    last_error = models.TextField(blank=True)
    # Which time of its step this email is: empty for a step that goes out once per enrollment; for a reminder
    # before Stripe's next payment attempt, the attempt it announces ("<invoice id>:attempt-<n>"), because that step
    # goes out again before each retry (automations.services.enrollments.enrollment_retime).
    occurrence = models.CharField(max_length=255, blank=True, default="", db_default="")
    idempotency_key = models.CharField(
        max_length=255, unique=True, help_text="Ours: email:enrollment-<id>:step-<id>[:<occurrence>]."
    )
    batch = models.ForeignKey(EmailBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="items")
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    # Why the queue deferred or skipped this marketing email (frequency cap, quiet hours) or let it past the cap, in
    # staff's words (automations/send_gates.py). Kept after it is sent.
    send_gate_note = models.CharField(max_length=500, blank=True, default="", db_default="")
    # Non-empty: this email ignores the frequency cap (a critical announcement); the text says who allowed it and why,
    # and is the audit of that choice. Quiet hours, topics and consent still apply.
    frequency_cap_override = models.CharField(max_length=300, blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # First time each tracking outcome happened to this email. Kept here (written once, by the tracking service) so
    # the analytics page aggregates one row per email instead of every tracking event.
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    # An open later than AUTOMATIONS_MACHINE_OPEN_SECONDS after delivery. Not proof of a person: open events (Resend's)
    # carry no user agent or IP, so a privacy proxy that fetches later counts here too (docs/automations.md).
    human_opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True, help_text="Permanent bounce: the address is suppressed.")
    soft_bounced_at = models.DateTimeField(
        null=True, blank=True, help_text="Transient or undetermined bounce (mailbox full, ...): suppresses nothing."
    )
    failed_at = models.DateTimeField(null=True, blank=True, help_text="Resend reported email.failed.")
    provider_suppressed_at = models.DateTimeField(
        "suppressed by Resend at", null=True, blank=True, help_text="Resend reported email.suppressed."
    )
    delivery_problem = models.CharField(
        max_length=500,
        blank=True,
        default="",
        db_default="",
        help_text="What Resend last said about a bounce, failure or suppression.",
    )
    complained_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-scheduled_at", "-id"]
        constraints = [
            # Once per step, or for a reminder that repeats before each of Stripe's retries, once per retry: however
            # often and in whatever order the failures arrive, never two emails of one step for the same retry.
            models.UniqueConstraint(
                fields=["enrollment", "step", "occurrence"], name="email_queue_item_once_per_occurrence"
            ),
        ]
        indexes = [
            # The queue's hot path: due pending items in order.
            models.Index(fields=["next_attempt_at"], name="queue_item_due_idx", condition=Q(status="pending")),
            models.Index(
                fields=["provider_message_id"], name="queue_item_message_id_idx", condition=~Q(provider_message_id="")
            ),
            models.Index(fields=["sent_at", "step"], name="queue_item_sent_idx", condition=Q(sent_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.step.template.name} to {self.recipient} ({self.status})"
