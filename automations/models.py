"""Email sequences: templates, rules, steps, enrollments, the email queue, send batches, tracking and suppressions.

Only `automations.services` (and the sending code in `automations.sending`) writes these tables. The flow and the
guarantees are described in docs/automations.md.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from customers.events import EVENT_NAMES
from customers.lifecycle import CAMPAIGN_STAGES, Stage
from customers.models import Customer, DomainEvent

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
        from .rendering import template_compile_errors

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
        if errors:
            raise ValidationError(errors)


class StepAnchor(models.TextChoices):
    ENROLLMENT = "enrollment", "after enrollment"
    PREVIOUS_STEP = "previous_step", "after the previous step"
    # Dunning timed to Stripe: the payment.failed payload carries the invoice's next_payment_attempt, and every later
    # failure of the same subscription moves the pending steps below to the attempt it announces
    # (automations.services.step_times and enrollment_retime).
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
            from .rendering import template_compile_errors

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


class QueueStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # Refused by the queue for its address or consent (automations/email_state.py); last_error says why.
    SUPPRESSED = "suppressed", "Blocked"
    # Held because its rule is paused; back to pending, or skipped with a reason, when the rule is resumed.
    PAUSED = "held", "Paused"
    # Handed to Resend in a call whose outcome never became known (its 24 h idempotency window ran out, or Resend
    # said the key was used with another payload). It may have been delivered; it is never sent again by the queue.
    UNCONFIRMED = "unconfirmed", "Outcome unknown"


FINAL_QUEUE_STATUSES = (
    QueueStatus.SENT,
    QueueStatus.FAILED,
    QueueStatus.CANCELLED,
    QueueStatus.SUPPRESSED,
    QueueStatus.UNCONFIRMED,
)


class BatchStatus(models.TextChoices):
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SPLIT = "split", "Split (refused, items re-batched)"
    RELEASED = "released", "Released (refused for our configuration; emails back in the queue)"
    UNCONFIRMED = "unconfirmed", "Outcome unknown (see last error)"


class EmailBatch(models.Model):
    """One provider call: which items go into it, the exact request, and its idempotency key, recorded before the call.

    A worker that dies after the provider accepted the call and before our commit leaves the batch `sending` with an
    expired lease; the next worker sends the same stored messages with the same key, and the provider answers with
    the first result instead of sending again.
    """

    idempotency_key = models.CharField(max_length=255, unique=True, help_text="Ours: email-batch:<id>.")
    # What goes in the Idempotency-Key header: the batch key, or for a batch of one email that email's own key, so
    # every resend of one email within Resend's 24 hours is recognised, whichever batch carries it.
    provider_idempotency_key = models.CharField(max_length=255)
    status = models.CharField(max_length=20, choices=BatchStatus.choices, default=BatchStatus.SENDING)
    messages = models.JSONField(help_text='The rendered messages: [{"item_id": ..., "message": {Resend fields}}].')
    attempts = models.PositiveIntegerField(default=0)
    # Set when a worker takes the batch to make the call, cleared when the answer is recorded. Found still set by the
    # next worker, it means a worker died mid-call: the provider may have sent the batch.
    call_in_progress = models.BooleanField(default=False)
    # Once a call may have been accepted (timeout, dropped connection, dead worker), the batch is only ever re-sent
    # exactly as stored, under its key. Until then, emails whose sequence has ended since can still be taken out.
    possibly_accepted = models.BooleanField(default=False)
    # The first call: Resend remembers the key for 24 hours from about then, so retries stop before that.
    first_called_at = models.DateTimeField(null=True, blank=True)
    # Resend's error `name` from the last refusal (e.g. invalid_idempotent_request), for the admin's filter.
    error_name = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(db_index=True)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    worker = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "email batches"
        indexes = [models.Index(fields=["lease_expires_at"], name="batch_in_flight_idx", condition=Q(status="sending"))]

    def __str__(self) -> str:
        return self.idempotency_key


class EmailQueueItem(models.Model):
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="queue_items")
    step = models.ForeignKey(AutomationStep, on_delete=models.PROTECT, related_name="queue_items")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="email_queue_items")
    recipient = models.EmailField(max_length=254)
    scheduled_at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=QueueStatus.choices, default=QueueStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(help_text="When the queue may next take this item.")
    last_error = models.TextField(blank=True)
    # Which time of its step this email is: empty for a step that goes out once per enrollment; for a reminder
    # before Stripe's next payment attempt, the attempt it announces ("<invoice id>:attempt-<n>"), because that step
    # goes out again before each retry (automations.services.enrollment_retime).
    occurrence = models.CharField(max_length=255, blank=True, default="", db_default="")
    idempotency_key = models.CharField(
        max_length=255, unique=True, help_text="Ours: email:enrollment-<id>:step-<id>[:<occurrence>]."
    )
    batch = models.ForeignKey(EmailBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="items")
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # First time each tracking outcome happened to this email. Kept here (written once, by the tracking service) so
    # the analytics page aggregates one row per email instead of every tracking event.
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    # An open later than AUTOMATIONS_MACHINE_OPEN_SECONDS after delivery. Not proof of a person: Resend's open events
    # carry no user agent or IP, so a privacy proxy that fetches later counts here too (docs/automations.md).
    human_opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True, help_text="Permanent bounce: the address is suppressed.")
    soft_bounced_at = models.DateTimeField(
        null=True, blank=True, help_text="Transient or undetermined bounce (mailbox full, ...): suppresses nothing."
    )
    failed_at = models.DateTimeField(null=True, blank=True, help_text="Resend reported email.failed.")
    provider_suppressed_at = models.DateTimeField(
        "suppressed by Resend at", null=True, blank=True, help_text="Resend reported email.suppressed."
    )
    delivery_problem = models.CharField(
        max_length=500,
        blank=True,
        default="",
        db_default="",
        help_text="What Resend last said about a bounce, failure or suppression.",
    )
    complained_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-scheduled_at", "-id"]
        constraints = [
            # Once per step, or for a reminder that repeats before each of Stripe's retries, once per retry: however
            # often and in whatever order the failures arrive, never two emails of one step for the same retry.
            models.UniqueConstraint(
                fields=["enrollment", "step", "occurrence"], name="email_queue_item_once_per_occurrence"
            ),
        ]
        indexes = [
            # The queue's hot path: due pending items in order.
            models.Index(fields=["next_attempt_at"], name="queue_item_due_idx", condition=Q(status="pending")),
            models.Index(
                fields=["provider_message_id"], name="queue_item_message_id_idx", condition=~Q(provider_message_id="")
            ),
            models.Index(fields=["sent_at", "step"], name="queue_item_sent_idx", condition=Q(sent_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.step.template.name} to {self.recipient} ({self.status})"


class EmailEventType(models.TextChoices):
    DELIVERED = "delivered", "Delivered"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"
    DEFERRED = "deferred", "Deferred"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed by Resend"


class BounceType(models.TextChoices):
    # Resend's `bounce.type` (https://resend.com/docs/webhooks/emails/bounced). Only Permanent means a dead address.
    PERMANENT = "Permanent", "Permanent"
    TRANSIENT = "Transient", "Transient"
    UNDETERMINED = "Undetermined", "Undetermined"


# Transient bounces (mailbox full, greylisting, ...) suppress nothing alone; this many different emails to one
# address bouncing within the window mean the address is not working, and it is suppressed.
SOFT_BOUNCE_LIMIT = 3
SOFT_BOUNCE_WINDOW = timedelta(days=30)


class EmailEvent(models.Model):
    """One tracking event from the provider, stored once per provider event id."""

    queue_item = models.ForeignKey(
        EmailQueueItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    type = models.CharField(max_length=20, choices=EmailEventType.choices)
    occurred_at = models.DateTimeField()
    url = models.URLField(max_length=2000, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    provider_event_id = models.CharField(max_length=255, unique=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    recipient = models.EmailField(max_length=254, blank=True)
    machine_open = models.BooleanField(
        default=False, help_text="An open within AUTOMATIONS_MACHINE_OPEN_SECONDS of delivery: not a person."
    )
    # db_default: rows written by raw SQL (bench/email_analytics.py) need not name the columns.
    bounce_type = models.CharField(
        max_length=20, blank=True, default="", db_default="", help_text="Resend's bounce.type, for bounces."
    )
    detail = models.CharField(
        max_length=500,
        blank=True,
        default="",
        db_default="",
        help_text="What Resend said: the bounce, failure or suppression message.",
    )
    payload = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["queue_item", "type"], name="email_event_item_type_idx"),
            # Events that came before we knew their message id, waiting to be linked.
            models.Index(fields=["received_at"], name="email_event_unlinked_idx", condition=Q(queue_item=None)),
            # Transient bounces per address over the last 30 days (three suppress the address).
            models.Index(
                fields=["recipient", "occurred_at"], name="email_event_bounce_idx", condition=Q(type="bounced")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} at {self.occurred_at:%Y-%m-%d %H:%M}"


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    SOFT_BOUNCES = "soft_bounces", "Repeated transient bounces"
    COMPLAINT = "complaint", "Spam complaint"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
    MANUAL = "manual", "Added by staff"


# An unsubscribe stops marketing only: a customer who unsubscribed still needs to hear that their payment failed.
# Bounces, complaints and staff suppressions stop everything.
SUPPRESSES_TRANSACTIONAL = (
    SuppressionReason.HARD_BOUNCE,
    SuppressionReason.SOFT_BOUNCES,
    SuppressionReason.COMPLAINT,
    SuppressionReason.MANUAL,
)


class Suppression(models.Model):
    email = models.EmailField(max_length=254)
    reason = models.CharField(max_length=20, choices=SuppressionReason.choices)
    queue_item = models.ForeignKey(EmailQueueItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["email", "reason"], name="suppression_unique_per_reason")]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_reason_display()})"

    def save(self, *args, **kwargs):
        # Addresses are compared lower-case everywhere (customers normalise the same way).
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)


class ProviderCallSlot(models.Model):
    """The next moment any worker may call a provider: one row per provider, shared by every worker.

    Resend's rate limit is per team, not per process. Each worker reserves its call slot here with one atomic UPDATE
    (automations.sending.provider_slot_reserve), so several workers together stay under the limit instead of each
    finding it with a 429 and a second of sleep.
    """

    provider = models.CharField(max_length=50, unique=True)
    next_slot_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.provider}: next call at {self.next_slot_at:%H:%M:%S.%f}"


class StaffTestSend(models.Model):
    """One "send me a test" from the template preview: who, which template, when. The per-person limit counts these
    rows (in the database, so it holds across every web worker)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    template = models.ForeignKey(EmailTemplate, on_delete=models.SET_NULL, null=True, related_name="+")
    recipient = models.EmailField(max_length=254)
    sent_at = models.DateTimeField(db_index=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-sent_at"]

    def __str__(self) -> str:
        return f"Test of {self.template} to {self.recipient} at {self.sent_at:%Y-%m-%d %H:%M}"


class SendingPause(models.Model):
    """Sending through a provider is paused for every worker: our configuration is wrong, not the emails.

    Written when Resend refuses a call with 401/403 (key missing, revoked or rotated; sending domain not verified) or
    a quota error. While the row exists no worker claims new emails; one worker at a time makes a probe call (the next
    due batch) when `next_probe_at` comes, and a success deletes the row. Staff can delete it from the admin too.
    """

    provider = models.CharField(max_length=50, unique=True)
    cause = models.CharField(max_length=300, help_text="Why sending stopped, as shown on the admin pages.")
    status_code = models.PositiveIntegerField(default=0)
    error_name = models.CharField(max_length=100, blank=True)
    paused_at = models.DateTimeField()
    next_probe_at = models.DateTimeField()
    probes = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.provider} paused: {self.cause}"


class QueueWake(models.Model):
    """A drain task is queued and has not started yet (`enqueued_at` set): further wake-ups add no task.

    Enrollments whose first email is due now each ask for a drain; this row turns a burst of such asks into one task
    on the broker (automations.drain_control.drain_wake_claim). The task clears it when it starts.
    """

    name = models.CharField(max_length=50, unique=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: queued at {self.enqueued_at}" if self.enqueued_at else f"{self.name}: none queued"
