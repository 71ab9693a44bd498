"""The ticket page's tables (support/workspace.py writes them): staff replies and internal notes, close requests, the
ticket's audit of staff actions, and the customer's transcript by direct message.

Imported at the end of support/models.py, so Django registers them with the app. Only support's services write them.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from .models import Ticket


class PostKind(models.TextChoices):
    REPLY = "reply", "Reply"  # posted in the ticket's channel
    NOTE = "note", "Internal note"  # stays in the admin, never sent to Discord


class PostStatus(models.TextChoices):
    PENDING = "pending", "Sending"
    SENT = "sent", "Sent"
    INTERNAL = "internal", "Internal"
    FAILED = "failed", "Not sent"


class TicketPost(models.Model):
    """A reply or an internal note written on the ticket page.

    `form_token` comes from the page's form: a double click or a resubmitted form carries the same token, and the
    unique constraint makes it one row, so one message. A reply is posted after commit with the Discord nonce
    `ticket-post-<id>` (our id) and `enforce_nonce`, so a retry after a timeout or a 5xx posts nothing twice.
    """

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="posts")
    kind = models.CharField(max_length=10, choices=PostKind.choices)
    form_token = models.CharField(max_length=64)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    author_name = models.CharField(max_length=150)
    content = models.TextField()
    status = models.CharField(max_length=10, choices=PostStatus.choices)
    discord_message_id = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["ticket", "form_token"], name="ticket_post_once_per_form")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.author_name} on #{self.ticket_id}"

    @property
    def nonce(self) -> str:
        """Discord's dedupe key for this reply (at most 25 characters), derived from our id."""
        return f"ticket-post-{self.pk}"


class CloseRequestStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the customer"
    CONFIRMED = "confirmed", "Confirmed by the customer"
    KEPT_OPEN = "kept_open", "Kept open by the customer"
    CANCELLED = "cancelled", "Cancelled: the customer wrote"
    EXPIRED = "expired", "Closed without an answer"


class TicketCloseRequest(models.Model):
    """Staff ask the customer whether the ticket can close: confirm or keep open in the channel; without an answer by
    `due_at` it closes (support.close-requests schedule); a message from the customer cancels it."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="close_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    requested_by_name = models.CharField(max_length=150)
    reason = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=CloseRequestStatus.choices, default=CloseRequestStatus.PENDING)
    message_id = models.CharField(max_length=32, blank=True)  # the question with its two buttons, in the channel
    requested_at = models.DateTimeField()
    due_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket"], condition=Q(status="pending"), name="ticket_one_pending_close_request"
            )
        ]

    def __str__(self) -> str:
        return f"Close request on #{self.ticket_id} ({self.get_status_display()})"

    @property
    def nonce(self) -> str:
        return f"close-request-{self.pk}"


class TicketAuditEntry(models.Model):
    """What a staff member did to a ticket from the ticket page (claim, transfer, close, ...): who, when, what. Written
    in the same transaction as the change; the customer's timeline gets the same entry when the ticket has one."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="audit_entries")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=30)
    summary = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.summary


class TranscriptDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Sending"
    SENT = "sent", "Sent"
    REFUSED = "refused", "Refused by Discord (the user takes no direct messages)"
    FAILED = "failed", "Failed"


class TranscriptDelivery(models.Model):
    """The customer's copy of the transcript, sent once by direct message after the close (nonce
    `transcript-<ticket id>`). Discord's 50007 ("Cannot send messages to this user") is final: recorded, not retried."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="transcript_delivery")
    status = models.CharField(
        max_length=10, choices=TranscriptDeliveryStatus.choices, default=TranscriptDeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    discord_message_id = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Transcript of #{self.ticket_id}: {self.get_status_display()}"

    @property
    def nonce(self) -> str:
        return f"transcript-{self.ticket_id}"
