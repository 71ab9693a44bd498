"""The customer record, its timeline, its stage history and the domain-event outbox.

Only `customers.services` writes these tables; other apps call those services.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from .lifecycle import Stage


class Customer(models.Model):
    # Identity: anchored on the Stripe customer id when there is one; email is the fallback key.
    # Blank only for a Stripe customer who has no email yet (Stripe allows it); such a customer is found by Stripe id.
    email = models.EmailField(max_length=254, blank=True)
    name = models.CharField(max_length=200, blank=True)
    stripe_customer_id = models.CharField("Stripe customer id", max_length=255, blank=True, default="")

    # Ids in the other systems we keep in step with.
    discord_user_id = models.CharField("Discord user id", max_length=32, blank=True, default="")
    mautic_contact_id = models.CharField("Mautic contact id", max_length=32, blank=True, default="")
    espocrm_lead_id = models.CharField("EspoCRM lead id", max_length=64, blank=True, default="")

    lifecycle_stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.DISCOVERY, db_index=True)
    stage_changed_at = models.DateTimeField(null=True, blank=True)

    # Marketing fields, named as in the Mautic field conventions of the crowdfunding workflows.
    opt_in_confirmed = models.BooleanField(default=False, help_text="Gate for all marketing messages.")
    vip_status = models.BooleanField("VIP", default=False)
    promo_code = models.CharField(max_length=64, blank=True, default="")
    discord_invite_link_vip = models.URLField("Discord invite link (VIP)", blank=True, default="")
    discord_invite_link_basic = models.URLField("Discord invite link (basic)", blank=True, default="")
    # When the Mautic contact's state copied onto these fields was last changed in Mautic: an older copy (a late or
    # retried webhook) never overwrites a newer one.
    mautic_modified_at = models.DateTimeField("Mautic data as of", null=True, blank=True)
    # An IANA zone ("Europe/Berlin") for quiet hours; blank: unknown, the site default applies
    # (CUSTOMER_DEFAULT_TIME_ZONE). Set through customers.consent (from Stripe's country, or by staff).
    time_zone = models.CharField(max_length=64, blank=True, default="", db_default="")

    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("email"), condition=~Q(email=""), name="customer_email_unique_ci"),
            models.UniqueConstraint(
                fields=["stripe_customer_id"],
                condition=~Q(stripe_customer_id=""),
                name="customer_stripe_id_unique_when_set",
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="customer_created_idx"),  # new customers per period (dashboard)
            models.Index(fields=["discord_user_id"], name="customer_discord_idx", condition=~Q(discord_user_id="")),
            models.Index(fields=["mautic_contact_id"], name="customer_mautic_idx", condition=~Q(mautic_contact_id="")),
            models.Index(fields=["espocrm_lead_id"], name="customer_espocrm_idx", condition=~Q(espocrm_lead_id="")),
        ]

    def __str__(self) -> str:
        address = self.email or self.stripe_customer_id or f"customer {self.pk}"
        return f"{self.name} <{address}>" if self.name else address


class TimelineSource(models.TextChoices):
    STRIPE = "stripe", "Stripe"
    EMAIL = "email", "Email"
    SUPPORT = "support", "Support"
    MAUTIC = "mautic", "Mautic"
    DISCORD = "discord", "Discord"
    TRIALS = "trials", "Trials"
    CRM = "crm", "CRM"
    STAFF = "staff", "Staff"


class TimelineEvent(models.Model):
    """One thing that happened to a customer, shown newest first on their page.

    `source_key` identifies the source event (a Stripe event id, an email tracking event id, ...): recording the same
    source event twice is a no-op because (source, source_key) is unique.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="timeline_events")
    source = models.CharField(max_length=20, choices=TimelineSource.choices)
    kind = models.CharField(max_length=64, help_text="What happened, e.g. subscription.created.")
    occurred_at = models.DateTimeField(db_index=True)
    summary = models.CharField(max_length=300, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    # A link to the source object: its type and id in the source system (e.g. "stripe.subscription", "sub_123").
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=255, blank=True)
    source_key = models.CharField(max_length=255)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "source_key"], name="timeline_event_unique_per_source_event"),
        ]
        indexes = [
            models.Index(fields=["customer", "-occurred_at"], name="timeline_customer_recent_idx"),
            # Payment failures and recoveries in a period, out of every timeline event (the dashboard's dunning figure).
            models.Index(
                fields=["kind", "occurred_at"],
                name="timeline_payment_idx",
                condition=Q(kind__in=["payment.failed", "payment.recovered"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} at {self.occurred_at:%Y-%m-%d %H:%M}"


class StageTransition(models.Model):
    """Every lifecycle move, with its cause: the customer's path and the data for a funnel."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="stage_transitions")
    from_stage = models.CharField(max_length=20, choices=Stage.choices)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    cause = models.CharField(max_length=200)
    occurred_at = models.DateTimeField(db_index=True)
    source_key = models.CharField(max_length=255, blank=True, default="")
    forced = models.BooleanField(default=False, help_text="Set by staff outside the allowed transitions.")

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "source_key"],
                condition=~Q(source_key=""),
                name="stage_transition_unique_per_source_event",
            ),
        ]
        indexes = [models.Index(fields=["to_stage", "occurred_at"], name="stage_transition_funnel_idx")]

    def __str__(self) -> str:
        return f"{self.from_stage} -> {self.to_stage}"


class StageMoveDay(models.Model):
    """The dashboard's roll-up of StageTransition: per UTC day and (from, to) pair, the moves made that day and how
    many of them the customer later left onward (to a next stage of the funnel, customers/rollups.py). Kept by
    customer_move_stage in the move's transaction; `manage.py rebuild_stage_rollup` recomputes it from the moves."""

    day = models.DateField()
    from_stage = models.CharField(
        max_length=20, choices=Stage.choices, blank=True, help_text="Empty: customers the CRM first recorded that day."
    )
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    moves = models.PositiveIntegerField(default=0)
    moved_on = models.PositiveIntegerField(default=0, help_text="Of these moves, how many the customer left onward.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "from_stage", "to_stage"], name="stage_move_day_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.from_stage} -> {self.to_stage} x{self.moves}"


class DomainEvent(models.Model):
    """The outbox of domain events ("payment failed for customer X") that other apps react to.

    A service publishes inside its own transaction, so the event exists exactly when the change that caused it does.
    `key` is derived from our ids or the source event's id: publishing the same fact twice is a no-op. Dispatch to
    subscribers happens after commit, in a task; `dispatched_at` stays empty until every subscriber has run, and a
    periodic sweep re-dispatches whatever a crash left behind.
    """

    name = models.CharField(max_length=64, db_index=True)
    key = models.CharField(max_length=255, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="domain_events")
    payload = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="domain_event_pending_idx", condition=Q(dispatched_at=None)),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class DispatchWakeup(models.Model):
    """Coalesces the wake-ups of a background drain: at most one drain task waits on the broker at a time.

    A publish flips `requested_at` from empty to now with one UPSERT and enqueues a drain task only when it made that
    flip; a drain empties it when it starts and then works until nothing is due. A burst of thousands of events thus
    puts one task on the broker, not one per event. See customers.events.dispatch_wake.
    """

    name = models.CharField(max_length=100, unique=True)
    requested_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: {'requested' if self.requested_at else 'idle'}"


class StaffActionKind(models.TextChoices):
    EMAIL_RESEND = "email_resend", "Resent an email"
    EMAIL_CANCEL = "email_cancel", "Cancelled a pending email"
    ENROLL = "enroll", "Enrolled in a rule"
    UNENROLL = "unenroll", "Removed from a rule"
    SUPPRESSION_LIFT = "suppression_lift", "Lifted a suppression"
    CONSENT_CHANGE = "consent_change", "Changed marketing consent"
    STAGE_MOVE = "stage_move", "Moved the stage"
    CONTACT_EDIT = "contact_edit", "Edited contact details"
    DISCORD_LINK = "discord_link", "Linked a Discord account"
    EMAIL_CHANGE = "email_change", "Corrected the email address"
    CARD_UPDATE_LINK_SEND = "card_update_link_send", "Sent the card-update link"
    GOODWILL_CREDIT = "goodwill_credit", "Gave a goodwill credit"


class StaffAction(models.Model):
    """The audit row of one thing a staff member did to a customer from the back-office: who, when, what and why.

    Written by customers.staff_actions in the same transaction as the change itself, so a change without its audit
    row (or the other way round) cannot exist. `actor_name` keeps the name if the user is deleted later.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="staff_actions")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=30, choices=StaffActionKind.choices)
    reason = models.CharField(max_length=500, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="staff_action_customer_idx")]

    def __str__(self) -> str:
        return f"{self.actor_name}: {self.get_action_display()} ({self.created_at:%Y-%m-%d %H:%M})"


class Topic(models.Model):
    """What a marketing email is about (product news, game events, offers, ...): every marketing email belongs to one,
    and a customer may turn each off on the preference page. Transactional email has none. Marketing manages them in
    the admin; the defaults come from migration customers.0013."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(
        max_length=300, blank=True, help_text="What the customer reads under the topic's name on the preference page."
    )
    subscribed_by_default = models.BooleanField(
        default=True,
        help_text="On: a customer with marketing consent gets this topic until they turn it off. Off: only those who "
        "turned it on.",
    )
    position = models.PositiveSmallIntegerField(default=0, help_text="Order on the preference page.")
    archived = models.BooleanField(default=False, help_text="Not shown on the preference page, not for new rules.")

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class TopicSubscription(models.Model):
    """A customer's own choice for one topic. No row: the topic's default. Written by customers.consent, together
    with the consent record that says when and from where."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="topic_subscriptions")
    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="subscriptions")
    subscribed = models.BooleanField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "topic"], name="topic_subscription_unique")]

    def __str__(self) -> str:
        return f"{self.customer_id} {'on' if self.subscribed else 'off'} {self.topic_id}"


class ConsentSource(models.TextChoices):
    STAFF = "staff", "Staff (back-office)"
    PREFERENCE_PAGE = "preference_page", "Preference page"
    ONE_CLICK = "one_click", "One-click unsubscribe (mail app)"
    UNSUBSCRIBE_PAGE = "unsubscribe_page", "Unsubscribe page"
    API = "api", "REST API"
    IMPORT = "import", "Import"


class ConsentRecord(models.Model):
    """Every change of a customer's marketing consent, with where it came from: the proof of consent. Append-only
    (the model refuses an update and a database trigger refuses an UPDATE, migration customers.0013).

    `topic` empty: all marketing (`opt_in` is the customer's `opt_in_confirmed` after the change); set: that topic
    (`opt_in` is the topic's subscription after the change). The customer's fields are the current state; these rows
    are how it got there.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consent_records")
    topic = models.ForeignKey(
        Topic, on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="Empty: all marketing."
    )
    opt_in = models.BooleanField(help_text="The consent after the change.")
    source = models.CharField(max_length=30, choices=ConsentSource.choices, default=ConsentSource.STAFF)
    reason = models.CharField(max_length=500, blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="e.g. the email whose link was used.")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    actor_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="consent_record_customer_idx")]

    def __str__(self) -> str:
        what = f"topic {self.topic}" if self.topic_id else "marketing"
        return f"{'opted in to' if self.opt_in else 'opted out of'} {what} by {self.actor_name or self.source}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("Consent records are append-only: add a new record instead of changing one.")
        super().save(*args, **kwargs)
