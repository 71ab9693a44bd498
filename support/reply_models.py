"""Saved replies (support/saved_replies.py), their uses in tickets, and the suggestions made before a ticket opens
(support/suggestions.py). Imported by support/models.py, so they are support's models like the others."""

from django.db import models

from .models import Ticket, TicketCategory

# Discord refuses a message over 2,000 characters (https://discord.com/developers/docs/resources/message#create-message).
DISCORD_MESSAGE_MAX = 2000


class SavedReply(models.Model):
    """A reply Support and Marketing keep in the admin. The body is a Jinja text template rendered in the email
    templates' sandbox with the same limits (automations.rendering.render_text), filled from the ticket's customer."""

    title = models.CharField(max_length=100, unique=True, help_text="Shown in Discord's /reply list (100 characters).")
    category = models.CharField(
        max_length=20, choices=TicketCategory.choices, blank=True, help_text="Empty: offered for every category."
    )
    body = models.TextField(
        help_text="Discord markdown with placeholders, e.g. {{ customer.first_name }}, "
        "{% if subscription %}{{ subscription.product_name }}, renews {{ subscription.current_period_end|date }}"
        "{% endif %}, {{ card_update_url }}. At most 2,000 characters once rendered."
    )
    public = models.BooleanField(
        default=False,
        help_text="Offered to customers in the ticket form before a ticket opens, when it matches their category "
        "and words (it is then shown to them: write it for the customer).",
    )
    keywords = models.CharField(
        max_length=300, blank=True, help_text="Extra words that make the form offer it (the title counts too)."
    )
    updated_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        verbose_name_plural = "saved replies"

    def __str__(self) -> str:
        return self.title


class SavedReplyVia(models.TextChoices):
    DISCORD = "discord", "Discord /reply"
    ADMIN = "admin", "Ticket page"


class SavedReplyUse(models.Model):
    """A saved reply posted in a ticket's channel, once per key (a retried click or interaction posts nothing more)."""

    key = models.CharField(max_length=120, unique=True)
    saved_reply = models.ForeignKey(SavedReply, on_delete=models.SET_NULL, null=True, related_name="uses")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="saved_reply_uses")
    via = models.CharField(max_length=10, choices=SavedReplyVia.choices)
    staff_name = models.CharField(max_length=150)
    content = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    discord_message_id = models.CharField(max_length=32, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.saved_reply or 'deleted reply'} in ticket #{self.ticket_id}"


class SuggestionOutcome(models.TextChoices):
    PENDING = "pending", "No answer yet"
    SOLVED = "solved", "Solved it (ticket avoided)"
    OPENED = "opened", "Still needed help (ticket opened)"


class PanelSuggestion(models.Model):
    """Public saved replies offered in the ticket form before the ticket opened, with the form as it was typed (so
    "I still need help" opens the ticket without asking again) and what the customer answered."""

    interaction_id = models.CharField(max_length=32, unique=True, help_text="The form's submit.")
    discord_user_id = models.CharField(max_length=32, db_index=True)
    discord_username = models.CharField(max_length=100, blank=True)
    category = models.CharField(max_length=20, choices=TicketCategory.choices)
    subject = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    email = models.EmailField(blank=True)
    offered = models.ManyToManyField(SavedReply, related_name="offered_in", blank=True)
    outcome = models.CharField(max_length=10, choices=SuggestionOutcome.choices, default=SuggestionOutcome.PENDING)
    solved_by = models.ForeignKey(
        SavedReply, on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets_avoided"
    )
    ticket = models.ForeignKey(Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["outcome", "created_at"], name="panel_suggestion_outcome_idx")]

    def __str__(self) -> str:
        return f"Suggestions for {self.discord_username or self.discord_user_id} ({self.get_outcome_display()})"
