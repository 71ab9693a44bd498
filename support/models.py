"""Support tickets opened from ModReady's Discord. The bot and its flows arrive with the support issue."""

from django.db import models


class TicketCategory(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    SETUP = "setup", "Setup"
    TECHNICAL = "technical", "Technical"
    BILLING = "billing", "Billing"
    OTHER = "other", "Other"


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class Ticket(models.Model):
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="tickets", null=True)
    discord_user_id = models.CharField(max_length=32)
    discord_channel_id = models.CharField(max_length=32, blank=True)
    category = models.CharField(max_length=20, choices=TicketCategory.choices, default=TicketCategory.OTHER)
    subject = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=TicketStatus.choices, default=TicketStatus.OPEN, db_index=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"Ticket #{self.pk} ({self.get_category_display()})"


class TicketMessage(models.Model):
    """One message of a ticket's transcript, saved when the ticket closes."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    discord_message_id = models.CharField(max_length=32)
    author_id = models.CharField(max_length=32)
    author_name = models.CharField(max_length=100)
    content = models.TextField(blank=True)
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["sent_at"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "discord_message_id"], name="ticket_message_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.author_name}: {self.content[:50]}"
