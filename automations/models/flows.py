"""The flows marketing edits: email templates, rules (trigger, conditions, exits, re-entry) and their steps; and
the enrollments that run them per customer."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from customers.events import EVENT_NAMES
from customers.lifecycle import CAMPAIGN_STAGES, Stage
from customers.models import Customer, DomainEvent, Topic

EVENT_CHOICES = [(name, name) for name in EVENT_NAMES]


class TemplateCategory(models.TextChoices):
    # Transactional: about the customer's own account or payment; sent whatever their marketing consent.
    TRANSACTIONAL = "transactional", "Transactional"
    # Marketing: sent only to customers with opt_in_confirmed, and carries one-click unsubscribe headers.
    MARKETING = "marketing", "Marketing"


class EmailTemplate(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    category = models.CharField(max_length=20, choices=TemplateCategory.choices, default=TemplateCategory.MARKETING)
    subject = models.CharField(max_length=200, help_text="Jinja2; one line.")
    preheader = models.CharField(
        max_length=200, blank=True, help_text="Jinja2; the preview line mail apps show next to the subject."
    )
    html_body = models.TextField(
        "HTML body",
        help_text='Jinja2, HTML-escaped. Rendered inside the ModReady layout (block "content").',
    )
    text_body = models.TextField(help_text="Jinja2, plain text. Rendered inside the plain-text layout.")
    # A template whose emails were sent cannot be deleted (the queue items point to it through their step); retiring
    # it keeps it out of new steps instead.
    retired = models.BooleanField(default=False, help_text="Retired templates cannot be used by active steps.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} (retired)" if self.retired else self.name

    def clean(self) -> None:
        # Imported here: rendering imports the models for typing only, and the admin form must refuse a template
        # that does not compile before it can reach the queue.
        from ..rendering import template_compile_errors

        errors = template_compile_errors(
            subject=self.subject, preheader=self.preheader, html=self.html_body, text=self.text_body, name=self.name
        )
        if self.retired and self.pk and self.steps.filter(retired=False).exists():
            errors["retired"] = "Steps that are not retired still use this template: retire them first."
        if errors:
            raise ValidationError(errors)


class ReentryPolicy(models.TextChoices):
    ONCE_PER_CUSTOMER = "once_per_customer", "Once per customer"
    ONCE_PER_SUBSCRIPTION = "once_per_subscription", "Once per subscription"
    EVERY_TIME = "every_time", "Every time the trigger happens"


class WhenHeld(models.TextChoices):
    # What the queue does with a marketing email that the frequency cap or quiet hours hold (automations/send_gates.py).
    DEFER = "defer", "Defer it to the next allowed moment"
    SKIP = "skip", "Skip it (with the reason)"


class AutomationRule(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    trigger = models.CharField(max_length=64, choices=EVENT_CHOICES)
    enabled = models.BooleanField(default=True)
    reentry = models.CharField(
        "re-entry policy", max_length=30, choices=ReentryPolicy.choices, default=ReentryPolicy.ONCE_PER_SUBSCRIPTION
    )
    # Conditions: empty means "any".
    condition_product_ids = models.JSONField(
        "only for products",
        default=list,
        blank=True,
        help_text='Stripe product ids, e.g. ["prod_ABC"]. Empty: every product.',
    )
    condition_lifecycle_stages = models.JSONField(
        "only in lifecycle stages",
        default=list,
        blank=True,
        help_text=f'Stage values, e.g. ["active", "at_risk"]. One of: {", ".join(Stage.values)}. Empty: any.',
    )
    condition_vip = models.BooleanField("only VIP / only non-VIP", null=True, blank=True, help_text="Empty: anyone.")
    exit_events = models.JSONField(
        default=list,
        blank=True,
        help_text='Domain events that end an enrollment and cancel its unsent emails, e.g. ["payment.recovered"].',
    )
    # A re-engagement campaign: its emails move customers along the journey (customers/lifecycle.py,
    # "Churned -> Win-back -> Churned").
    moves_to_stage = models.CharField(
        "moves customers to stage",
        max_length=20,
        blank=True,
        default="",
        db_default="",
        choices=[(stage, Stage(stage).label) for stage in CAMPAIGN_STAGES],
        help_text="Win-back: the first email this rule sends to a churned customer moves them to Win-back, and the "
        "end of their enrollment without a new subscription moves them back to Churned. Empty: nobody moves.",
    )
    # Paused: every pending email of the rule is held (status paused) and the queue sends none of them until the rule
    # is resumed (automations/rule_pause.py). `enabled` is a different thing: it only stops new enrollments.
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    paused_by = models.CharField(max_length=150, blank=True, default="", db_default="", editable=False)
    resume_skip_after = models.DurationField(
        "on resume, skip emails late by more than",
        default=timedelta(days=2),
        db_default=timedelta(days=2),
        help_text="When the rule is resumed (or an address is corrected), an email whose moment passed longer ago "
        "than this is skipped, with the reason, instead of going out late.",
    )
    # What its marketing emails are about: a customer who turned the topic off gets none of them. Its transactional
    # steps have no topic whatever this says (docs/automations.md, "Topics, caps and quiet hours").
    topic = models.ForeignKey(
        Topic,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rules",
        help_text="Required when the rule has a marketing step. Transactional steps are never held by topics.",
    )
    when_held = models.CharField(
        "when the frequency cap or quiet hours hold an email",
        max_length=10,
        choices=WhenHeld.choices,
        default=WhenHeld.DEFER,
        db_default=WhenHeld.DEFER,
    )
    # The hidden rule of a marketing broadcast (marketing/broadcast_models.py): it carries the broadcast's emails
    # through the queue, is never enrolled by an event, and is edited, paused and resumed from the broadcast.
    sends_broadcast = models.BooleanField(default=False, db_default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(resume_skip_after__gte=timedelta(0)), name="automation_rule_resume_skip_not_negative"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        unknown = [name for name in self.exit_events or [] if name not in EVENT_NAMES]
        if unknown or not isinstance(self.exit_events, list):
            errors["exit_events"] = f"Unknown domain events: {unknown}. Known: {', '.join(EVENT_NAMES)}"
        stages = self.condition_lifecycle_stages
        if not isinstance(stages, list) or any(stage not in Stage.values for stage in stages):
            errors["condition_lifecycle_stages"] = f"A list of: {', '.join(Stage.values)}"
        if not isinstance(self.condition_product_ids, list):
            errors["condition_product_ids"] = "A list of Stripe product ids"
        if self.pk and self.topic_id is None and self.steps.filter(template__category="marketing").exists():
            errors["topic"] = "This rule sends marketing email: choose the topic it belongs to."
        if self.topic_id and self.topic.archived:
            before = AutomationRule.objects.filter(pk=self.pk).values_list("topic_id", flat=True).first()
            if before != self.topic_id:
                errors["topic"] = f"Topic {self.topic.name!r} is archived."
        if errors:
            raise ValidationError(errors)


class StepAnchor(models.TextChoices):
    ENROLLMENT = "enrollment", "after enrollment"
    PREVIOUS_STEP = "previous_step", "after the previous step"
    # Dunning timed to Stripe: the payment.failed payload carries the invoice's next_payment_attempt, and every later
    # failure of the same subscription moves the pending steps below to the attempt it announces
    # (automations.services.enrollment_policy.step_times and enrollment_retime).
    # Due at the next attempt + delay; without one (Stripe has given up retrying), at enrollment + delay.
    NEXT_PAYMENT_ATTEMPT = "next_payment_attempt", "after Stripe's next payment attempt"
    # Due `delay` before the next attempt (not before now); not sent when no attempt is coming. Goes out again before
    # each later attempt Stripe announces: one email per announced attempt (EmailQueueItem.occurrence).
    BEFORE_NEXT_PAYMENT_ATTEMPT = "before_next_payment_attempt", "before Stripe's next payment attempt"
    # Due `delay` after the failure that ends Stripe's retries (next_payment_attempt null). While retries remain it
    # waits, due RETRIES_EXHAUSTED_FALLBACK after the last announced attempt in case that failure never reaches us.
    RETRIES_EXHAUSTED = "retries_exhausted", "when Stripe stops retrying"


# Anchors whose time comes from Stripe's retry schedule: a later payment.failed re-times their unsent emails.
STRIPE_RETRY_ANCHORS = (
    StepAnchor.NEXT_PAYMENT_ATTEMPT,
    StepAnchor.BEFORE_NEXT_PAYMENT_ATTEMPT,
    StepAnchor.RETRIES_EXHAUSTED,
)


class AutomationStep(models.Model):
    rule = models.ForeignKey(AutomationRule, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField()
    delay = models.DurationField(default=timedelta, help_text='e.g. "0" (now), "1 00:00:00" (1 day), "3:00:00" (3 h).')
    anchor = models.CharField(max_length=30, choices=StepAnchor.choices, default=StepAnchor.ENROLLMENT)
    template = models.ForeignKey(EmailTemplate, on_delete=models.PROTECT, related_name="steps")
    # A step whose emails were queued cannot be deleted (their history points to it); a retired step queues no new
    # emails, its pending ones are cancelled, and its sent ones stay in the analytics.
    retired = models.BooleanField(default=False, help_text="Retired steps send nothing new and keep their history.")

    class Meta:
        ordering = ["rule", "order"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "order"], name="automation_step_unique_order"),
            models.CheckConstraint(condition=Q(delay__gte=timedelta(0)), name="automation_step_delay_not_negative"),
        ]

    def __str__(self) -> str:
        retired = " (retired)" if self.retired else ""
        return f"{self.rule.name} #{self.order}: {self.template.name}{retired}"

    def clean(self) -> None:
        if self.delay is not None and self.delay < timedelta(0):
            raise ValidationError({"delay": "A delay cannot be negative."})
        if self.template_id and not self.retired and self.template.retired:
            raise ValidationError({"template": f"Template {self.template.name!r} is retired."})
        if self.template_id:
            from ..rendering import template_compile_errors

            template = self.template
            errors = template_compile_errors(
                subject=template.subject,
                preheader=template.preheader,
                html=template.html_body,
                text=template.text_body,
                name=template.name,
            )
            if errors:
                raise ValidationError({"template": f"Template {template.name!r} does not compile: {errors}"})
        marketing = self.template_id and self.template.category == TemplateCategory.MARKETING
        if marketing and self.rule_id and self.rule.topic_id is None:
            raise ValidationError({"template": "A marketing email needs a topic: choose the rule's topic first."})


class EnrollmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    EXITED = "exited", "Exited"


class Enrollment(models.Model):
    # PROTECT, like every link from sent email to its rule, step and template: deleting a rule must not take its
    # enrollments, their queue items and their tracking with it. A rule with history is disabled instead.
    rule = models.ForeignKey(AutomationRule, on_delete=models.PROTECT, related_name="enrollments")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="enrollments")
    # What the re-entry policy counts: "customer", "subscription:<id>" or "event:<domain event key>".
    scope_key = models.CharField(max_length=300)
    subscription_id = models.CharField("Stripe subscription id", max_length=255, blank=True, default="")
    trigger_event = models.ForeignKey(DomainEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    context = models.JSONField(default=dict, blank=True, help_text="The triggering event's payload.")
    status = models.CharField(max_length=20, choices=EnrollmentStatus.choices, default=EnrollmentStatus.ACTIVE)
    exit_reason = models.CharField(max_length=200, blank=True)
    enrolled_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    exited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-enrolled_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "customer", "scope_key"], name="enrollment_unique_per_scope"),
            # Never two running copies of one sequence for the same customer and subscription, whatever the policy:
            # Stripe retries a failed invoice several times and each failure must not start dunning again.
            models.UniqueConstraint(
                fields=["rule", "customer", "subscription_id"],
                condition=Q(status="active"),
                name="enrollment_one_active_per_subscription",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer} in {self.rule}"
