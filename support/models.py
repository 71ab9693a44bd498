"""Support tickets opened from ModReady's Discord through HTTP interactions, their transcripts and ratings.

Only `support.services` writes these tables.
"""

from django.db import models
from django.db.models import Q


class TicketCategory(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    SETUP = "setup", "Setup"
    TECHNICAL = "technical", "Technical"
    BILLING = "billing", "Billing"
    OTHER = "other", "Other"


class TicketStatus(models.TextChoices):
    OPENING = "opening", "Opening"  # the row exists, the channel is being created
    OPEN = "open", "Open"
    CLOSING = "closing", "Closing"  # transcript being saved; the channel stays until it is safe
    CLOSED = "closed", "Closed"
    NOT_OPENED = "not_opened", "Not opened"  # no room for a channel (every category full); nothing was created


ACTIVE_STATUSES = (TicketStatus.OPENING, TicketStatus.OPEN, TicketStatus.CLOSING)


class TicketPriority(models.TextChoices):
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"  # VIP customers


class Ticket(models.Model):
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="tickets", null=True, blank=True
    )
    # How the customer was found: by the Discord id proven to be theirs (support/identity.py). "email" (an unverified
    # typed email) was written before support 0004, which took those tickets off their customer; a typed email now
    # stays in contact_email only.
    customer_link = models.CharField(max_length=10, blank=True, choices=[("discord", "Discord id"), ("email", "Email")])
    discord_user_id = models.CharField("Discord user id", max_length=32, db_index=True)
    discord_username = models.CharField(max_length=100, blank=True)
    discord_channel_id = models.CharField("Discord channel id", max_length=32, blank=True)
    opening_message_id = models.CharField(max_length=32, blank=True)

    category = models.CharField(max_length=20, choices=TicketCategory.choices, default=TicketCategory.OTHER)
    suggested_category = models.CharField(max_length=20, choices=TicketCategory.choices, blank=True)
    triage_reason = models.CharField(max_length=200, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    contact_email = models.EmailField(blank=True)
    priority = models.CharField(max_length=10, choices=TicketPriority.choices, default=TicketPriority.NORMAL)
    status = models.CharField(max_length=12, choices=TicketStatus.choices, default=TicketStatus.OPENING, db_index=True)
    outside_support_hours = models.BooleanField(default=False)

    opened_at = models.DateTimeField(auto_now_add=True)
    claimed_by_discord_id = models.CharField(max_length=32, blank=True)
    claimed_by_name = models.CharField("claimed by", max_length=100, blank=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    # Read from the channel by the activity job (no gateway, so no message events).
    last_seen_message_id = models.CharField(max_length=32, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    first_staff_response_at = models.DateTimeField(null=True, blank=True)
    first_responder_discord_id = models.CharField(max_length=32, blank=True)
    first_responder_name = models.CharField(max_length=100, blank=True)
    inactivity_warned_at = models.DateTimeField(null=True, blank=True)

    close_requested_at = models.DateTimeField(null=True, blank=True)
    closed_by_discord_id = models.CharField(max_length=32, blank=True)
    closed_by_name = models.CharField("closed by", max_length=100, blank=True)
    close_reason = models.CharField(max_length=500, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_attempts = models.PositiveIntegerField(default=0)
    transcript_html = models.TextField(blank=True)

    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    rating_comment = models.TextField(blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)

    # The interaction that opened the ticket: its token edits the customer's ephemeral reply (valid 15 minutes).
    interaction_token = models.CharField(max_length=500, blank=True)
    interaction_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="The last Discord error while working this ticket.")
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # Two clicks at the same moment open one ticket: the second insert fails here.
            models.UniqueConstraint(
                fields=["discord_user_id", "category"],
                condition=Q(status__in=["opening", "open", "closing"]),
                name="ticket_one_active_per_discord_user_category",
            ),
            models.UniqueConstraint(
                fields=["customer", "category"],
                condition=Q(status__in=["opening", "open", "closing"]),
                name="ticket_one_active_per_customer_category",
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5), name="ticket_rating_1_to_5"
            ),
        ]
        indexes = [models.Index(fields=["status", "last_message_at"], name="ticket_status_activity_idx")]

    def __str__(self) -> str:
        return f"Ticket #{self.pk} ({self.get_category_display()})"

    @property
    def channel_name(self) -> str:
        return f"ticket-{self.pk}"


class TicketMessage(models.Model):
    """One message of a ticket's transcript, saved before the channel is deleted."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    discord_message_id = models.CharField(max_length=32)
    author_id = models.CharField(max_length=32)
    author_name = models.CharField(max_length=100)
    author_is_bot = models.BooleanField(default=False)
    content = models.TextField(blank=True)
    embeds = models.JSONField(default=list, blank=True)
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["sent_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "discord_message_id"], name="ticket_message_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.author_name}: {self.content[:50]}"


class TicketAttachment(models.Model):
    """A file from the transcript, downloaded from Discord's CDN before its signed URL expires or the channel goes.

    The bytes live in the database (capped by DISCORD_ATTACHMENT_MAX_BYTES), so the transcript is safe exactly when
    its transaction commits; a larger file keeps only its name and size (`data` empty, `too_large` set).
    """

    message = models.ForeignKey(TicketMessage, on_delete=models.CASCADE, related_name="attachments")
    discord_attachment_id = models.CharField(max_length=32, unique=True)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    data = models.BinaryField(null=True, blank=True)
    too_large = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.filename


class DiscordInteraction(models.Model):
    """Every interaction Discord delivered, once: the unique id makes a repeated delivery a no-op."""

    interaction_id = models.CharField(max_length=32, unique=True)
    interaction_type = models.PositiveSmallIntegerField()
    custom_id = models.CharField(max_length=100, blank=True)
    discord_user_id = models.CharField(max_length=32, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.interaction_type}:{self.custom_id or '-'} ({self.interaction_id})"


class SupportPanel(models.Model):
    """The "Open a ticket" message in the support channel, so the panel command edits it instead of posting anew."""

    channel_id = models.CharField(max_length=32, unique=True)
    message_id = models.CharField(max_length=32)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Panel in {self.channel_id}"


class DiscordLinkRequest(models.Model):
    """A request to link a Discord account to a customer, made when someone typed that customer's email in the ticket
    form. A typed email proves nothing: the link is made only when the customer confirms it from the mailbox on file
    (the emailed one-time link, support.identity), or when staff link it by hand from the admin (audited)."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="discord_link_requests")
    discord_user_id = models.CharField("Discord user id", max_length=32)
    discord_username = models.CharField(max_length=100, blank=True)
    ticket = models.ForeignKey(Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    email = models.EmailField(help_text="The customer's address the link was sent to.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    send_error = models.CharField(max_length=500, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["customer", "created_at"], name="discord_link_customer_idx")]

    def __str__(self) -> str:
        return f"Discord {self.discord_username or self.discord_user_id} -> {self.email}"


# Saved replies, SLA clocks and category roles live in their own modules; importing them here registers them.
from .reply_models import PanelSuggestion, SavedReply, SavedReplyUse  # noqa: E402, F401
from .sla_models import CategoryStaffRole, SlaAlert, SlaTarget, TicketResponse, TicketSla  # noqa: E402, F401
