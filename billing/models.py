"""Billing's own records: the CRM view of Stripe subscriptions, and the processing state of Stripe events.

dj-stripe's tables mirror Stripe itself (customers, subscriptions, invoices, ... and every webhook delivery in
`WebhookEventTrigger`). Only `billing.services` writes the tables below.
"""

from django.db import models
from django.db.models import Case, F, IntegerField, Q, Value, When

from integrations.models import InboundDeliveryState


class SubscriptionStatus(models.TextChoices):
    # https://docs.stripe.com/api/subscriptions/object#subscription_object-status
    INCOMPLETE = "incomplete", "Incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete (expired)"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    CANCELED = "canceled", "Canceled"
    UNPAID = "unpaid", "Unpaid"
    PAUSED = "paused", "Paused"


# The statuses in which the customer still has (or is about to have) the product.
CURRENT_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE)
# The statuses a subscription never leaves: nothing about it can be saved any more (no dunning, no welcome).
ENDED_STATUSES = frozenset({SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED})
FAILING_STATUSES = (SubscriptionStatus.PAST_DUE, SubscriptionStatus.UNPAID)
# At risk (the dashboard): a failed payment, or a cancellation scheduled on a subscription still running.
AT_RISK = Q(status__in=FAILING_STATUSES) | (
    Q(status__in=CURRENT_STATUSES) & (Q(cancel_at_period_end=True) | Q(cancel_at__isnull=False))
)
FAILING_FIRST = Case(When(status__in=FAILING_STATUSES, then=Value(0)), default=Value(1), output_field=IntegerField())


# Stripe's cancellation_details, worded as Stripe's dashboard and customer portal word them: https://docs.stripe.com/api/subscriptions/object#subscription_object-cancellation_details
CANCELLATION_FEEDBACK = {
    "customer_service": "Customer service was less than expected",
    "low_quality": "Quality was less than expected",
    "missing_features": "Some features are missing",
    "other": "Other reason",
    "switched_service": "Switched to a different service",
    "too_complex": "Ease of use was less than expected",
    "too_expensive": "It's too expensive",
    "unused": "Not using the service enough",
    "": "No feedback given",
}
CANCELLATION_REASONS = {
    "cancellation_requested": "Canceled by request",
    "payment_disputed": "Payment disputed",
    "payment_failed": "Payment failed",
    "": "Not stated",
}


class Subscription(models.Model):
    """A customer's ModReady subscription as the CRM sees it: one row per Stripe subscription of a ModReady product.

    Written from the current Stripe state (as re-fetched by dj-stripe, or listed by the daily sync), never from an
    event's possibly stale payload, so an old event processed late cannot move it backwards.
    """

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="subscriptions")
    stripe_subscription_id = models.CharField("Stripe subscription id", max_length=255, unique=True)
    djstripe_subscription = models.OneToOneField(
        "djstripe.Subscription",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="crm_subscription",
        help_text="dj-stripe's mirror of the Stripe object.",
    )
    product_id = models.CharField("Stripe product id", max_length=255, db_index=True)
    product_name = models.CharField(max_length=255, blank=True)
    price_id = models.CharField("Stripe price id", max_length=255, blank=True)
    item_id = models.CharField(
        "Stripe subscription item id", max_length=255, blank=True, help_text="The item that holds the ModReady price."
    )
    status = models.CharField(max_length=32, choices=SubscriptionStatus.choices, db_index=True)
    amount = models.BigIntegerField(default=0, help_text="Per interval, in minor units (cents).")
    currency = models.CharField(max_length=3, blank=True)
    interval = models.CharField(max_length=16, blank=True, help_text="day, week, month or year.")
    interval_count = models.PositiveIntegerField(default=1)
    quantity = models.PositiveIntegerField(default=1)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    trial_start = models.DateTimeField(null=True, blank=True)
    trial_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    cancel_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    cancellation_reason = models.CharField(max_length=64, blank=True)
    cancellation_feedback = models.CharField(max_length=64, blank=True)
    cancellation_comment = models.TextField(blank=True)
    # https://docs.stripe.com/api/subscriptions/object#subscription_object-pause_collection: a paused collection
    # keeps the status `active`; Stripe clears it at `resumes_at`.
    pause_behavior = models.CharField(max_length=32, blank=True, help_text="Stripe's pause_collection.behavior.")
    pause_resumes_at = models.DateTimeField(null=True, blank=True)
    discount_id = models.CharField(
        "Stripe discount",
        max_length=255,
        blank=True,
        help_text="The subscription's first discount (Stripe's di_ id; its coupon's id when it came expanded).",
    )
    metadata = models.JSONField(default=dict, blank=True)
    stripe_created = models.DateTimeField(null=True, blank=True, help_text="When Stripe created the subscription.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-stripe_created", "-id"]
        indexes = [
            models.Index(fields=["customer", "status"], name="subscription_customer_status"),
            # The dashboard: the few subscriptions at risk among many, and the ones that ended in a period.
            # In the at-risk list's order (billing.selectors.subscriptions_at_risk), with the status for its counts.
            models.Index(
                FAILING_FIRST,
                F("current_period_end"),
                F("id"),
                F("status"),
                name="subscription_at_risk_idx",
                condition=AT_RISK,
            ),
            models.Index(
                fields=["ended_at", "id"],  # also in the order of the latest comments
                include=["cancellation_reason", "cancellation_feedback"],
                name="subscription_ended_idx",
                condition=Q(status=SubscriptionStatus.CANCELED),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_name or self.product_id} ({self.status})"

    @property
    def cancellation_feedback_label(self) -> str:
        return CANCELLATION_FEEDBACK.get(self.cancellation_feedback, self.cancellation_feedback)

    @property
    def cancellation_reason_label(self) -> str:
        return CANCELLATION_REASONS.get(self.cancellation_reason, self.cancellation_reason)

    @property
    def is_current(self) -> bool:
        return self.status in CURRENT_STATUSES

    @property
    def is_paused(self) -> bool:
        return bool(self.pause_behavior) and self.status not in ENDED_STATUSES


class EventProcessingStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed (will retry)"
    DEAD = "dead", "Failed (gave up)"


class StripeEventProcessing(InboundDeliveryState):
    """The processing of one Stripe event id: at most one row per event, however often Stripe delivers it.

    Every delivery is stored in dj-stripe's `WebhookEventTrigger`; this row points at the first one and carries what
    dj-stripe's table lacks: a status, attempts, the next retry time and the last error. The unique `event_id` is
    what makes a duplicate delivery a no-op.
    """

    event_id = models.CharField("Stripe event id", max_length=255, unique=True)
    event_type = models.CharField(max_length=128, db_index=True)
    event_created = models.DateTimeField(null=True, blank=True, help_text="Stripe's `created` of the event.")
    # Taken from the delivered body when it is stored, so the events list can show whose event it is.
    stripe_customer_id = models.CharField("Stripe customer id", max_length=255, blank=True, default="", db_default="")
    trigger = models.ForeignKey(
        "djstripe.WebhookEventTrigger", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=EventProcessingStatus.choices, default=EventProcessingStatus.PENDING
    )
    deliveries = models.PositiveIntegerField(default=1, help_text="How many times Stripe delivered this event.")
    received_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "Stripe event"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="stripe_event_retry_idx",
                condition=Q(status__in=["pending", "failed"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({self.status})"


class PaymentRecovery(models.Model):
    """An invoice whose payment failed and was then paid: the dashboard's "recovered by dunning" reads these rows, not
    the timeline. Written with the payment.recovered fact (billing.recoveries); `manage.py rebuild_payment_recoveries`
    recomputes them from the timeline's payment.failed and payment.recovered facts."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    invoice_id = models.CharField(max_length=255, unique=True)
    subscription_id = models.CharField(max_length=255, blank=True, default="")
    first_failed_at = models.DateTimeField()
    recovered_at = models.DateTimeField(db_index=True)
    amount = models.BigIntegerField(help_text="Minor units, as Stripe last asked for them (the last failed attempt).")
    currency = models.CharField(max_length=3, help_text="Upper case, e.g. EUR.")
    after_dunning = models.BooleanField(
        default=False, help_text="A dunning email went to the customer between the first failure and the payment."
    )

    class Meta:
        verbose_name_plural = "payment recoveries"

    def __str__(self) -> str:
        return f"{self.invoice_id} recovered {self.recovered_at:%Y-%m-%d}"

    @property
    def amount_display(self) -> str:
        return f"{self.amount / 100:,.2f} {self.currency}"


from .retention.models import CancelSession, SaveOffer, SubscriptionChange  # noqa: E402,F401  (the cancellation flow's tables)
