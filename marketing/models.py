"""Marketing's own records. Today: segments, saved filters over what the CRM knows, evaluated in SQL when asked
(marketing/conditions.py compiles them; marketing/audience.py says who a marketing email to one would reach).

Only marketing.services and the admin's forms (validated by marketing.conditions) write these tables.
"""

from django.conf import settings
from django.db import models


class Match(models.TextChoices):
    ALL = "all", "all of the conditions"
    ANY = "any", "any of the conditions"


class ConditionField(models.TextChoices):
    LIFECYCLE_STAGE = "lifecycle_stage", "Lifecycle stage"
    PRODUCT = "product", "Current subscription to product"
    PLAN = "plan", "Current subscription on plan (price)"
    SUBSCRIPTION_STATUS = "subscription_status", "Has a subscription in status"
    VIP = "vip", "VIP"
    MARKETING_CONSENT = "marketing_consent", "Marketing consent"
    TENURE = "tenure", "Customer for"
    COUNTRY = "country", "Country (Stripe billing address)"
    CREATED = "created", "Created"
    CHURNED = "churned", "Churned"
    OPENED_EMAIL = "opened_email", "Opened any email"
    CLICKED_EMAIL = "clicked_email", "Clicked any email"
    RECEIVED_TEMPLATE = "received_template", "Was sent the email (template)"
    RECEIVED_RULE = "received_rule", "Was sent an email of the rule"
    OPEN_TICKET = "open_ticket", "Has an open support ticket"
    FAILED_PAYMENT = "failed_payment", "Had a failed payment"


class Operator(models.TextChoices):
    ONE_OF = "one_of", "is one of"
    NONE_OF = "none_of", "is none of"
    YES = "yes", "yes"
    NO = "no", "no"
    AT_LEAST_DAYS = "at_least_days", "at least N days"
    AT_MOST_DAYS = "at_most_days", "at most N days"
    WITHIN_DAYS = "within_days", "in the last N days"
    NOT_WITHIN_DAYS = "not_within_days", "not in the last N days"
    BETWEEN = "between", "between two dates"


class Segment(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    match = models.CharField(
        "customers who match",
        max_length=3,
        choices=Match.choices,
        default=Match.ALL,
        help_text="No condition: everyone.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentCondition(models.Model):
    """One condition of a segment: a field, an operator and a value, validated together (marketing.conditions)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="conditions")
    field = models.CharField(max_length=30, choices=ConditionField.choices)
    operator = models.CharField(max_length=20, choices=Operator.choices)
    # Normalised by marketing.conditions: a list of values, a number of days, {"since": date, "until": date}, or null.
    value = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        from .conditions import condition_text  # conditions reads these models' choices

        return condition_text(field=self.field, operator=self.operator, value=self.value)

    def clean(self) -> None:
        from .conditions import condition_clean

        self.value = condition_clean(field=self.field, operator=self.operator, value=self.value)


from .broadcast_models import (  # noqa: E402  (broadcasts live in their own module; one models namespace)
    LIVE_BROADCAST_STATUSES,
    Broadcast,
    BroadcastAuditEntry,
    BroadcastRecipient,
    BroadcastStatus,
    BroadcastVariant,
    RecipientPhase,
)

__all__ = [
    "LIVE_BROADCAST_STATUSES",
    "Broadcast",
    "BroadcastAuditEntry",
    "BroadcastRecipient",
    "BroadcastStatus",
    "BroadcastVariant",
    "ConditionField",
    "Match",
    "Operator",
    "RecipientPhase",
    "Segment",
    "SegmentCondition",
]
