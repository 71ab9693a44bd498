"""What the integrations keep: incoming webhook deliveries, workflow runs and their steps, and the few rows that make
the crowdfunding workflows exactly-once (one invite per contact and tier, one promo code per checkout session).

Only `integrations.services` (and the workflow modules it hands to) write these tables.
"""

from django.db import models
from django.db.models import Q


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Refused (malformed, not processed)"
    DEAD = "dead", "Failed (gave up)"


class InboundDeliveryState(models.Model):
    """What every stored incoming delivery carries about its processing (this app's InboundWebhook and billing's
    StripeEventProcessing): attempts, the next retry time (core/retry.py) and the last error. Written only by
    integrations/webhooks/store.py `delivery_attempt`."""

    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class InboundWebhook(InboundDeliveryState):
    """One incoming webhook delivery from any provider, stored before it is answered and processed in a task.

    `dedupe_key` is the provider's event id when it sends one, else a digest of the raw body (Mautic sends no id):
    unique per provider, so a repeated delivery is stored and processed once.
    """

    provider = models.CharField(max_length=32)
    dedupe_key = models.CharField(max_length=255)
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.RECEIVED)
    refused_fields = models.JSONField(
        default=list, blank=True, help_text="Fields refused at the edge (failed their check); the rest applied."
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        # Webhooks the providers send us; the ones we send out are webhooks.OutboundDelivery ("sent webhooks").
        verbose_name = "incoming webhook"
        verbose_name_plural = "incoming webhooks (from Stripe, Mautic, ...)"
        constraints = [
            models.UniqueConstraint(fields=["provider", "dedupe_key"], name="webhook_delivery_unique_per_provider"),
        ]
        indexes = [
            models.Index(fields=["received_at"], name="webhook_delivery_pending_idx", condition=~Q(status="processed")),
        ]

    def __str__(self) -> str:
        return f"{self.provider} delivery {self.pk}"


class RefusedWebhook(models.Model):
    """A correctly signed incoming webhook answered 400 because its body could not be read (integrations/payloads.py):
    kept so staff can see what a provider sent and why it was refused. Stripe, Resend and Discord record here."""

    provider = models.CharField(max_length=32)
    reason = models.CharField(max_length=300)
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField(help_text="The first 64 KB.")
    body_bytes = models.PositiveIntegerField(default=0)
    remote_ip = models.CharField("sent from", max_length=64, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "refused incoming webhook"
        verbose_name_plural = "refused incoming webhooks (signed but malformed)"

    def __str__(self) -> str:
        return f"{self.provider} delivery refused at {self.received_at:%Y-%m-%d %H:%M}"


class RunKind(models.TextChoices):
    CONTACT_INVITE = "contact_invite", "Mautic contact -> Discord invite"
    VIP_COUPON = "vip_coupon", "VIP reservation -> Shopware coupon"


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed (will retry)"
    GAVE_UP = "gave_up", "Failed (gave up)"
    NEEDS_REVIEW = "needs_review", "Needs staff review (outcome unknown, not retried)"


class WorkflowRun(models.Model):
    """One run of a workflow for one subject (a Mautic contact, a Stripe checkout session).

    `key` is derived from what triggered the run (`mautic-delivery:<id>:<contact>`, `checkout-session:<cs>:vip`):
    unique, so the same trigger never makes two runs.
    """

    kind = models.CharField(max_length=32, choices=RunKind.choices)
    key = models.CharField(max_length=255, unique=True)
    subject = models.CharField(max_length=255, db_index=True, help_text="mautic-contact:<id> or a checkout session")
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="workflow_runs"
    )
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    input = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="while running: renewed as the run works; past means its worker died"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="workflow_run_retry_idx", condition=Q(status="failed")),
            models.Index(fields=["lease_expires_at"], name="workflow_run_lease_idx", condition=Q(status="running")),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.subject}"


class StepOutcome(models.TextChoices):
    OK = "ok", "OK"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"
    NEEDS_REVIEW = "needs_review", "Needs staff review"


class WorkflowStep(models.Model):
    """One step of a run, kept once per (run, name) and updated on each attempt."""

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16, choices=StepOutcome.choices)
    detail = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="workflow_step_unique_per_run")]

    def __str__(self) -> str:
        return f"{self.name}: {self.outcome}"


class MauticContact(models.Model):
    """Our row per Mautic contact: the lock that serialises its invite work (SELECT ... FOR UPDATE), replacing
    n8n's random waits."""

    contact_id = models.CharField(max_length=32, unique=True)
    email = models.EmailField(max_length=254, blank=True)
    last_processed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Mautic contact {self.contact_id}"


class InviteTier(models.TextChoices):
    VIP = "vip", "VIP"
    BASIC = "basic", "Basic"


class InviteState(models.TextChoices):
    REQUESTING = "requesting", "Requested from Discord (answer not yet seen)"
    CREATED = "created", "Created in Discord"
    STORED = "stored", "Stored on the Mautic contact"
    EMAILED = "emailed", "Emailed"
    SUPERSEDED = "superseded", "Superseded (field cleared in Mautic, reissued)"


class DiscordInvite(models.Model):
    """Every invite we made, kept before it is written to Mautic: a retry after a failed write reuses it instead of
    making a second one. At most one current (not superseded) invite per contact and tier.

    The row is committed in state `requesting` (no code yet) *before* the POST to Discord, so a lost answer leaves a
    trace: the retry lists the channel's invites and adopts the one that POST made instead of creating another.
    `email_requested_at` is committed before the invite email is sent, for the same reason: Mautic's send has no
    idempotency key, so a send whose answer was lost is never repeated (the run asks staff to check instead).
    """

    contact = models.ForeignKey(MauticContact, on_delete=models.CASCADE, related_name="invites")
    tier = models.CharField(max_length=8, choices=InviteTier.choices)
    code = models.CharField(max_length=32, unique=True, null=True, blank=True, help_text="empty while requesting")
    url = models.URLField(blank=True)
    channel_id = models.CharField(max_length=32, blank=True, help_text="the Discord channel the invite is for")
    state = models.CharField(max_length=16, choices=InviteState.choices, default=InviteState.CREATED)
    run = models.ForeignKey(WorkflowRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="invites")
    created_at = models.DateTimeField(auto_now_add=True)
    stored_at = models.DateTimeField(null=True, blank=True)
    email_requested_at = models.DateTimeField(null=True, blank=True, help_text="set before the send is attempted")
    emailed_at = models.DateTimeField(null=True, blank=True)
    # A superseded invite is deleted at Discord once its successor is stored, so a leaked link stops working
    # (integrations/workflows/invite_revoke.py); a failed delete keeps its error and is retried every 5 minutes.
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="deleted at Discord: the link no longer works")
    revoke_error = models.CharField(max_length=500, blank=True, help_text="why the last delete at Discord failed")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "tier"], condition=~Q(state="superseded"), name="discord_invite_one_current"
            ),
        ]

    def __str__(self) -> str:
        return self.url or f"{self.tier} invite (requesting)"


class PromoCode(models.Model):
    """The VIP promo code of one checkout session, stored before any outside call: a retry reuses it, and the
    unique session id means one session never yields two codes. `shopware_id` is derived from our row, so after
    an unknown outcome we can ask Shopware whether it has the code."""

    checkout_session_id = models.CharField(max_length=255, unique=True)
    code = models.CharField(max_length=64, unique=True)
    shopware_id = models.CharField(max_length=32, unique=True)
    email = models.EmailField(max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)
    in_shopware_at = models.DateTimeField(null=True, blank=True)
    mautic_contact_id = models.CharField(max_length=32, blank=True)
    email_requested_at = models.DateTimeField(null=True, blank=True, help_text="set before the send is attempted")
    emailed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.code


class SyncCursor(models.Model):
    """Where a recurring job left off (the reconciliation job's "modified since")."""

    name = models.CharField(max_length=64, unique=True)
    value = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.value:%Y-%m-%d %H:%M}"


class AlertKind(models.TextChoices):
    DISCORD_TOKEN_REJECTED = "discord_token_rejected", "Discord refuses the bot token"
    DISCORD_MESSAGE_CONTENT_MISSING = "discord_message_content_missing", "Discord hides message text from the bot"


class ProviderAlert(models.Model):
    """Something about an outside system that staff must fix (a configuration, not a single record), shown on the
    admin's front page, the ticket list and `/healthz` until it clears (integrations/alerts.py). One row per kind: a
    repeat updates `last_seen_at`; the condition's end deletes the row."""

    kind = models.CharField(max_length=40, choices=AlertKind.choices, unique=True)
    message = models.CharField(max_length=500, help_text="What is wrong and what to do, in staff's words.")
    detail = models.CharField(max_length=500, blank=True, help_text="The provider's answer, for whoever fixes it.")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["first_seen_at"]

    def __str__(self) -> str:
        return self.get_kind_display()


class ProviderAccessToken(models.Model):
    """A provider's short-lived access token, shared by every worker and task (Shopware's lives ten minutes): one
    token serves every call until shortly before it expires, instead of one per run. `key` names the provider and
    the credentials it was issued for."""

    key = models.CharField(max_length=255, unique=True)
    token = models.TextField(blank=True)
    expires_at = models.DateTimeField()
    fetched_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.key.split(' ', 1)[0]} token until {self.expires_at:%H:%M:%S}"
