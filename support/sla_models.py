"""SLA targets and clocks (support/sla.py) and the staff role per category (support/category_roles.py). Imported by
support/models.py, so they are support's models like the others."""

from django.db import models
from django.db.models import Q

from .models import Ticket, TicketCategory, TicketPriority


class ResponseKind(models.TextChoices):
    FIRST = "first", "First response"
    NEXT = "next", "Next response"


class SlaTarget(models.Model):
    """How long, in support hours, a customer may wait for staff: the first response, and each next one after the
    customer writes again. A row for a category wins over the row for every category (category empty)."""

    category = models.CharField(
        max_length=20, choices=TicketCategory.choices, blank=True, help_text="Empty: every category without its own."
    )
    priority = models.CharField(max_length=10, choices=TicketPriority.choices)
    first_response_minutes = models.PositiveIntegerField(help_text="Support-hours minutes to the first response.")
    next_response_minutes = models.PositiveIntegerField(help_text="Support-hours minutes to each next response.")
    warn_minutes = models.PositiveIntegerField(
        default=15, help_text="Ping the staff role this many support-hours minutes before the target is missed."
    )

    class Meta:
        ordering = ["category", "priority"]
        verbose_name = "SLA target"
        constraints = [models.UniqueConstraint(fields=["category", "priority"], name="sla_target_one_per_pair")]

    def __str__(self) -> str:
        return f"{self.get_category_display() or 'Every category'} · {self.get_priority_display()}"


class TicketSla(models.Model):
    """A ticket's SLA clock: is the customer waiting for staff, since when, and when the target runs out."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, primary_key=True, related_name="sla")
    responses = models.PositiveIntegerField(default=0, help_text="Staff responses so far.")
    waiting_since = models.DateTimeField(null=True, blank=True, help_text="Empty: nobody is waiting for staff.")
    due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    warn_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = "ticket SLA clock"

    def __str__(self) -> str:
        return f"SLA of ticket #{self.ticket_id}"

    @property
    def waiting_kind(self) -> str:
        return ResponseKind.FIRST if self.responses == 0 else ResponseKind.NEXT


class TicketResponse(models.Model):
    """One staff response to a waiting customer, with the wait in support hours and on the wall clock."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="responses")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=ResponseKind.choices)
    waited_from = models.DateTimeField()
    answered_at = models.DateTimeField()
    responder_discord_id = models.CharField(max_length=32, blank=True)
    responder_name = models.CharField(max_length=100, blank=True)
    support_seconds = models.PositiveIntegerField()
    wall_seconds = models.PositiveIntegerField()
    target_seconds = models.PositiveIntegerField(null=True, blank=True)
    breached = models.BooleanField(default=False)

    class Meta:
        ordering = ["ticket", "number"]
        verbose_name = "staff response"
        constraints = [models.UniqueConstraint(fields=["ticket", "number"], name="ticket_response_unique_number")]
        indexes = [models.Index(fields=["answered_at"], name="ticket_response_answered_idx")]

    def __str__(self) -> str:
        return f"Ticket #{self.ticket_id} response {self.number}"


class SlaAlert(models.Model):
    """The ping sent when a ticket is about to miss a target: one per ticket, kind and response number."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="sla_alerts")
    kind = models.CharField(max_length=10, choices=ResponseKind.choices)
    response_number = models.PositiveIntegerField()
    due_at = models.DateTimeField()
    role_id = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    discord_message_id = models.CharField(max_length=32, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "SLA ping"
        constraints = [
            models.UniqueConstraint(fields=["ticket", "kind", "response_number"], name="sla_alert_once_per_response"),
        ]
        indexes = [models.Index(fields=["sent_at"], condition=Q(sent_at__isnull=True), name="sla_alert_unsent_idx")]

    def __str__(self) -> str:
        return f"Ticket #{self.ticket_id}: {self.get_kind_display()} #{self.response_number}"


class CategoryStaffRole(models.Model):
    """A category's own staff role: notified for its tickets and the role that sees their channels (instead of
    DISCORD_STAFF_ROLE_ID)."""

    category = models.CharField(max_length=20, choices=TicketCategory.choices, unique=True)
    role_id = models.CharField("Discord role id", max_length=32)
    role_name = models.CharField(max_length=100, blank=True, help_text="Shown in transcripts as @name.")

    class Meta:
        ordering = ["category"]

    def __str__(self) -> str:
        return f"{self.get_category_display()}: {self.role_name or self.role_id}"
