"""Who may send, and when: the provider call slots, the sending pause, the drain wake-up row, staff test sends."""

from django.conf import settings
from django.db import models

from .flows import EmailTemplate


class ProviderCallSlot(models.Model):
    """The next moment any worker may call a provider: one row per provider, shared by every worker.

    A provider's rate limit is per account, not per process. Each worker reserves its call slot here with one atomic
    UPDATE (automations.pacing.provider_slot_reserve), so several workers together stay under the limit instead of
    each finding it with a 429 and a second of sleep.
    """

    provider = models.CharField(max_length=50, unique=True)
    next_slot_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.provider}: next call at {self.next_slot_at:%H:%M:%S.%f}"


class DrainLease(models.Model):
    """One of AUTOMATIONS_DRAIN_SLOTS drains that may run at once, held by a live drain (automations.drain_leases).

    A drain takes a slot whose lease has run out, and its heartbeat pushes `lease_expires_at` on every third of
    AUTOMATIONS_LEASE_SECONDS (with the leases of the batches it is calling for). A SIGKILLed drain stops beating:
    within the lease its slot is free again, and the drains still beating wake a replacement.
    """

    slot = models.PositiveSmallIntegerField(unique=True)
    worker = models.CharField(max_length=100, blank=True, help_text="host:pid:tag of the drain holding it.")
    lease_expires_at = models.DateTimeField()
    taken_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"drain slot {self.slot}: {self.worker or 'free'} until {self.lease_expires_at:%H:%M:%S}"


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

    Written when the provider refuses a call with 401/403 (key missing, revoked or rotated; sending domain not
    verified) or a quota error. While the row exists no worker claims new emails; one worker at a time makes a probe
    call (the next due batch) when `next_probe_at` comes, and a success deletes the row. Staff can delete it from the
    admin too.
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
