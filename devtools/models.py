"""The local outbox: every email the embedded run would have sent, stored instead of sent (devtools.outbox)."""

from django.db import models
from django.db.models import Q


class OutboxEmail(models.Model):
    """One email as it would have left: one row per email, and one only per idempotency key (a repeat of a send under
    the same key is answered with this row, as Resend answers a repeat with its first answer)."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    message_id = models.CharField(max_length=255, blank=True, help_text="What the send returned as message id.")
    idempotency_key = models.CharField(max_length=256, blank=True)
    from_email = models.CharField(max_length=320)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    reply_to = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    attachments = models.JSONField(default=list, blank=True, help_text="File names and types, not their content.")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "outbox email"
        verbose_name_plural = "Outbox (local)"
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"], condition=~Q(idempotency_key=""), name="outbox_one_email_per_key"
            )
        ]

    def __str__(self) -> str:
        return f"{', '.join(self.to)}: {self.subject}"
