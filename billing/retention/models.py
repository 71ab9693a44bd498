"""The cancellation flow's tables: the save offers Marketing configures per reason, and one row per cancel session
(what the customer said, what they were offered, what they chose and what Stripe was asked).

Imported by billing/models.py, so they are billing's models (app label `billing`)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

# Stripe's cancellation_details.feedback values, in the order the page lists them, in the customer's words.
# https://docs.stripe.com/api/subscriptions/update#update_subscription-cancellation_details-feedback
REASONS = {
    "too_expensive": "It's too expensive",
    "missing_features": "Some features are missing",
    "switched_service": "I'm switching to a different service",
    "unused": "I'm not using the server enough",
    "customer_service": "Customer service was less than expected",
    "too_complex": "It's too hard to use",
    "low_quality": "The quality was less than expected",
    "other": "Another reason",
}
REASON_CHOICES = list(REASONS.items())


class OfferKind(models.TextChoices):
    PAUSE = "pause", "Pause the subscription"
    DISCOUNT = "discount", "Discount for some months"
    DOWNGRADE = "downgrade", "Move to a cheaper plan"


class SaveOffer(models.Model):
    """What the cancel page offers a customer who gives `reason` (Marketing edits these in the admin)."""

    reason = models.CharField(max_length=32, choices=REASON_CHOICES, unique=True)
    kind = models.CharField(max_length=16, choices=OfferKind.choices)
    enabled = models.BooleanField(default=True)
    pause_months = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(3)], help_text="Pause: 1 to 3."
    )
    discount_percent = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)], help_text="Discount: % off."
    )
    discount_months = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(12)], help_text="Discount: months."
    )
    downgrade_price_id = models.CharField(
        "Downgrade: Stripe price id", max_length=255, blank=True, help_text="A recurring price of a ModReady product."
    )
    downgrade_plan_name = models.CharField(
        "Downgrade: plan name", max_length=120, blank=True, help_text="As the customer knows it, e.g. Starter (4 GB)."
    )
    downgrade_amount = models.PositiveIntegerField(
        "Downgrade: price per interval (cents)", null=True, blank=True, help_text="As in Stripe, in minor units."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["reason"]
        verbose_name = "save offer"

    def __str__(self) -> str:
        return f"{REASONS.get(self.reason, self.reason)}: {self.terms_words()}"

    def clean(self) -> None:
        needed = {
            OfferKind.PAUSE: ["pause_months"],
            OfferKind.DISCOUNT: ["discount_percent", "discount_months"],
            OfferKind.DOWNGRADE: ["downgrade_price_id", "downgrade_plan_name", "downgrade_amount"],
        }.get(self.kind, [])
        missing = {name: "Needed for this kind of offer." for name in needed if getattr(self, name) in (None, "")}
        if missing:
            raise ValidationError(missing)

    def terms(self) -> dict:
        """The offer's parameters as the session records them (what the customer was shown)."""
        if self.kind == OfferKind.PAUSE:
            return {"months": self.pause_months}
        if self.kind == OfferKind.DISCOUNT:
            return {"percent_off": self.discount_percent, "months": self.discount_months}
        return {
            "price_id": self.downgrade_price_id,
            "plan_name": self.downgrade_plan_name,
            "amount": self.downgrade_amount,
        }

    def terms_words(self) -> str:
        if self.kind == OfferKind.PAUSE:
            return f"pause {self.pause_months} month(s)"
        if self.kind == OfferKind.DISCOUNT:
            return f"{self.discount_percent}% off for {self.discount_months} month(s)"
        return f"move to {self.downgrade_plan_name}"


class CancelOutcome(models.TextChoices):
    ACCEPTED = "accepted", "Accepted the offer"
    CANCELED = "canceled", "Confirmed the cancellation"


class ChangeKind(models.TextChoices):
    PAUSE = "pause", "Pause"
    DISCOUNT = "discount", "Discount"
    DOWNGRADE = "downgrade", "Move to a cheaper plan"
    CANCEL = "cancel", "Cancel at the period's end"


class ChangeStatus(models.TextChoices):
    APPLYING = "applying", "Sent to Stripe, no answer yet"
    APPLIED = "applied", "Applied in Stripe"
    FAILED = "failed", "Refused by Stripe"


class SubscriptionChange(models.Model):
    """One change we ask Stripe to make to a subscription, stored before it is sent: the request (`params`) and its
    Idempotency-Key (`key`, from our own ids, unique). Sending it again, after a timeout or a 5xx or for a repeated
    click, sends these same bytes under the same key, so Stripe acts once. The CRM's Subscription changes only when
    Stripe's webhook says so."""

    key = models.CharField("Idempotency-Key", max_length=255, unique=True)
    subscription = models.ForeignKey("billing.Subscription", on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=16, choices=ChangeKind.choices)
    params = models.JSONField(help_text="The POST /v1/subscriptions/<id> parameters, sent as they are on each try.")
    coupon = models.JSONField(
        default=dict, blank=True, help_text="A discount's coupon (id, percent_off, months), created first if needed."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=16, choices=ChangeStatus.choices, default=ChangeStatus.APPLYING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "subscription change"
        indexes = [
            models.Index(fields=["created_at"], name="subscription_change_retry_idx", condition=Q(status="applying"))
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.subscription_id} ({self.status})"


class CancelSession(models.Model):
    """One visit to the cancel page, created by the provisioning panel through the API for one subscription.

    `holdout` and `offer_eligible` are decided when it is created; the offer is chosen when the reason is given (and
    recorded even for the holdout, whose offer is withheld, so the groups compare like with like). The outcome is set
    once, with the Stripe change it leads to (`change`, keyed by the session): a repeat, a reload or the back button
    re-sends that same change under the same key, never another one."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="cancel_sessions")
    subscription = models.ForeignKey("billing.Subscription", on_delete=models.CASCADE, related_name="cancel_sessions")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField()
    holdout = models.BooleanField(default=False, help_text="In the no-offer group (a stable hash of the id).")
    offer_eligible = models.BooleanField(default=True, help_text="No save offer shown to this customer recently.")
    reason = models.CharField(max_length=32, choices=REASON_CHOICES, blank=True)
    comment = models.TextField(blank=True, max_length=2000)
    reason_given_at = models.DateTimeField(null=True, blank=True)
    offer = models.ForeignKey(SaveOffer, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    offer_kind = models.CharField(
        max_length=16, choices=OfferKind.choices, blank=True, help_text="Shown, or withheld for the holdout."
    )
    offer_terms = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=16, choices=CancelOutcome.choices, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    change = models.OneToOneField(
        SubscriptionChange, on_delete=models.PROTECT, null=True, blank=True, related_name="cancel_session"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "cancel session"
        indexes = [models.Index(fields=["customer", "created_at"], name="cancel_session_customer_idx")]
        constraints = [
            models.CheckConstraint(
                name="cancel_session_decided_has_change", condition=Q(outcome="") | Q(change__isnull=False)
            )
        ]

    def __str__(self) -> str:
        return f"Cancel session {self.pk} ({self.outcome or 'open'})"

    @property
    def offer_shown(self) -> bool:
        return bool(self.offer_kind) and not self.holdout

    @property
    def reason_words(self) -> str:
        return REASONS.get(self.reason, self.reason)
