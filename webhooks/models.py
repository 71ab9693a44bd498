"""Outbound webhooks (Standard Webhooks): the endpoints tools registered, each message to each endpoint, every attempt.

Only `webhooks.services` writes these tables. The flow and the guarantees are in docs/api.md ("Outbound webhooks").
"""

from django.db import models
from django.db.models import Q

from customers.models import Customer, DomainEvent

# The lifecycle changes a tool can subscribe to (Standard Webhooks `type`). Mapped from domain events in services.
EVENT_TYPES = (
    "customer.purchase",
    "customer.at_risk",
    "customer.churned",
    "customer.win_back",
    "payment.failed",
    "payment.recovered",
    "subscription.paused",
    "subscription.resumed",
    "subscription.cancellation_scheduled",
    "subscription.plan_changed",
)


class WebhookEndpoint(models.Model):
    url = models.URLField(
        "URL", max_length=2000, help_text="HTTPS URL that receives POSTs; redirects are not followed."
    )
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list, help_text=f"Any of: {', '.join(EVENT_TYPES)}.")
    # Standard Webhooks symmetric secret, `whsec_` + base64 of 32 random bytes. Stored as is because signing needs
    # it; shown to staff once, when the endpoint is created (or the secret rotated).
    secret = models.CharField(max_length=100, editable=False)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["url"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.description or self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (gave up)"
    CANCELLED = "cancelled", "Cancelled (endpoint disabled)"


class OutboundDelivery(models.Model):
    """One message to one endpoint. `message_id` (the `webhook-id` header) and `body` never change across retries,
    so the receiver can deduplicate and the signature covers the same bytes each time."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="webhook_deliveries")
    domain_event = models.ForeignKey(DomainEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    event_type = models.CharField(max_length=64)
    message_id = models.CharField(max_length=100)
    # Increases with every lifecycle change of the customer (the domain event's id): sends to an endpoint go in this
    # order, and a receiver can ignore anything older than what it last applied.
    sequence = models.BigIntegerField()
    body = models.TextField(help_text="The exact JSON sent: {type, timestamp, data}.")
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        # Webhooks we send to outside tools; the ones providers send us are integrations.InboundWebhook.
        verbose_name = "sent webhook"
        verbose_name_plural = "sent webhooks (to outside tools)"
        constraints = [
            # Dispatch of a domain event is at least once: the second run finds the delivery and adds nothing.
            models.UniqueConstraint(fields=["endpoint", "domain_event"], name="webhook_delivery_once_per_event"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="webhook_delivery_due_idx", condition=Q(status="pending")),
            models.Index(fields=["endpoint", "customer", "sequence"], name="webhook_delivery_order_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id} -> {self.endpoint}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(OutboundDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty: no answer.")
    duration_ms = models.PositiveIntegerField(default=0)
    response_body = models.TextField(blank=True, help_text="The first kilobyte of the answer.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.status_code or 'no answer'} at {self.attempted_at:%Y-%m-%d %H:%M:%S}"
