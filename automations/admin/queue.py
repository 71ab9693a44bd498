"""Enrollments, the email queue (each email shown as stored or sent, with retry and cancel), tracking events,
send batches, sending pauses and suppressions."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from jinja2 import TemplateError

from core.admin import ReadOnlyAdmin

from ..models import (
    EmailBatch,
    EmailEvent,
    EmailQueueItem,
    Enrollment,
    QueueStatus,
    SendingPause,
    StaffTestSend,
    Suppression,
)
from ..queue_messages import message_preview
from ..services.queue_items import queue_items_cancel, queue_items_retry_now
from ..services.suppressions import suppression_add
from .common import database_id, pause_banner
from .email_status import ShownStatusMixin, WillGoOutFilter
from .queue_resend import ResendActionsMixin


@admin.register(Enrollment)
class EnrollmentAdmin(ReadOnlyAdmin):
    list_display = ("customer", "rule", "status", "subscription_id", "enrolled_at", "exit_reason")
    list_filter = ("status", "rule")
    list_select_related = ("customer", "rule")
    search_fields = ("customer__email", "subscription_id")
    date_hierarchy = "enrolled_at"


class DueFilter(admin.SimpleListFilter):
    title = "due"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("now", "Due now"), ("later", "Later"), ("retrying", "Waiting to retry")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "now":
            return queryset.filter(status=QueueStatus.PENDING, next_attempt_at__lte=now)
        if self.value() == "later":
            return queryset.filter(status=QueueStatus.PENDING, next_attempt_at__gt=now)
        if self.value() == "retrying":
            return queryset.filter(status=QueueStatus.SENDING, attempts__gt=1)
        return queryset


@admin.register(EmailQueueItem)
class EmailQueueItemAdmin(ResendActionsMixin, ShownStatusMixin, ReadOnlyAdmin):
    list_display = (
        "recipient",
        "template_name",
        "rule_name",
        "shown_status",
        "scheduled_at",
        "attempts",
        "sent_at",
        "last_error_short",
    )
    list_filter = ("status", WillGoOutFilter, ("enrollment__rule", admin.RelatedOnlyFieldListFilter), DueFilter)
    list_select_related = ("step__template", "enrollment__rule", "customer")
    search_fields = ("recipient", "provider_message_id", "idempotency_key")
    date_hierarchy = "scheduled_at"
    actions = ("retry_now", "cancel_pending", *ResendActionsMixin.resend_actions)

    def changelist_view(self, request, extra_context=None):
        pause_banner(request)
        return super().changelist_view(request, extra_context)

    @admin.display(description="template")
    def template_name(self, obj):
        return obj.step.template.name

    @admin.display(description="rule")
    def rule_name(self, obj):
        return obj.enrollment.rule.name

    @admin.display(description="why")
    def last_error_short(self, obj):
        """Why an email is where it is: an error for a failed one, the reason for a cancelled or held one, or why
        the send gate deferred it (automations/send_gates.py)."""
        if not obj.last_error:
            return f"Held: {obj.send_gate_note[:80]}" if obj.send_gate_note else ""
        label = {QueueStatus.FAILED: "Error", QueueStatus.CANCELLED: "Cancelled"}.get(obj.status, "Note")
        return f"{label}: {obj.last_error[:80]}"

    def has_retry_permission(self, request):
        # Re-sending and cancelling emails change the queue: staff who may change queue items (superusers, and the
        # Marketing role: config/roles.py gives it automations.change_emailqueueitem). The form stays read-only
        # (ReadOnlyAdmin): these actions, through the services, are the only changes.
        return request.user.has_perm("automations.change_emailqueueitem")

    @admin.action(description="Retry selected failed emails now", permissions=["retry"])
    def retry_now(self, request, queryset):
        selected = list(queryset.values_list("pk", flat=True))
        count = queue_items_retry_now(item_ids=selected)
        self.message_user(request, f"{count} failed email(s) queued again.", messages.SUCCESS)
        if count < len(selected):
            self.message_user(
                request,
                f"{len(selected) - count} selected email(s) were not failed (or their step is retired) and were left "
                "as they were: only failed emails are retried.",
                messages.WARNING,
            )

    @admin.action(description="Cancel selected pending emails", permissions=["retry"])
    def cancel_pending(self, request, queryset):
        selected = list(queryset.values_list("pk", flat=True))
        count = queue_items_cancel(item_ids=selected, reason=f"Cancelled by {request.user.username}")
        self.message_user(request, f"{count} pending email(s) cancelled.", messages.SUCCESS)
        if count < len(selected):
            self.message_user(
                request,
                f"{len(selected) - count} selected email(s) were no longer pending and were left as they were: an "
                "email being sent or already sent cannot be called back.",
                messages.WARNING,
            )

    # --- one email: its page shows it as stored or sent, and offers retry or cancel ---

    def get_urls(self):
        return [
            path(
                "<int:pk>/retry/",
                self.admin_site.admin_view(self.retry_one_view),
                name="automations_emailqueueitem_retry",
            ),
            path(
                "<int:pk>/cancel/",
                self.admin_site.admin_view(self.cancel_one_view),
                name="automations_emailqueueitem_cancel",
            ),
            *super().get_urls(),
        ]

    def retry_one_view(self, request, pk):
        return self._act_on_one(request, pk, self.retry_now)

    def cancel_one_view(self, request, pk):
        return self._act_on_one(request, pk, self.cancel_pending)

    def _act_on_one(self, request, pk, action):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_retry_permission(request):
            raise PermissionDenied
        action(request, EmailQueueItem.objects.filter(pk=pk))
        return redirect(reverse("admin:automations_emailqueueitem_change", args=[pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        item_id = database_id(str(object_id))
        item = self.get_queryset(request).filter(pk=item_id).first() if item_id else None
        extra = {**(extra_context or {})}
        if item is not None:
            extra["email"] = email_as_stored(item)
            extra["can_retry"] = self.has_retry_permission(request)
            extra["item"] = item
        return super().change_view(request, object_id, form_url, extra)


def email_as_stored(item: EmailQueueItem) -> dict:
    """The email as it was handed (or is about to be handed) to the provider: the message stored in its batch, which
    is the request body of every attempt and never re-rendered. An email without one was never rendered (pending,
    cancelled or suppressed before its turn, or refused while rendering): it gets a preview rendered now, labelled."""
    if item.batch_id is not None:
        for entry in EmailBatch.objects.filter(pk=item.batch_id).values_list("messages", flat=True).first() or []:
            if entry.get("item_id") == item.pk:
                return {"state": "stored", **_message_fields(entry["message"])}
    notes = {
        QueueStatus.PENDING: "Not rendered yet: the queue renders an email when it sends it.",
        QueueStatus.FAILED: "This email was never handed to the provider (it failed before it could be sent).",
        QueueStatus.CANCELLED: "This email was cancelled before it was rendered: it was never sent.",
        QueueStatus.SUPPRESSED: "This email was suppressed before it was rendered: it was never sent.",
    }
    note = notes.get(item.status, "No stored copy of this email was found.")
    try:
        message = message_preview(item)
    except (TemplateError, ValidationError) as exc:
        return {"state": "error", "note": note, "error": f"{type(exc).__name__}: {exc}"}
    return {"state": "preview", "note": note, **_message_fields(message)}


def _message_fields(message: dict) -> dict:
    return {
        "subject": message.get("subject", ""),
        "sender": message.get("from", ""),
        "to": ", ".join(message.get("to") or []),
        "html": message.get("html", ""),
        "text": message.get("text", ""),
        "headers": sorted((message.get("headers") or {}).items()),
    }


@admin.register(EmailEvent)
class EmailEventAdmin(ReadOnlyAdmin):
    list_display = ("type", "recipient", "occurred_at", "machine_open", "bounce_type", "url", "provider_event_id")
    list_filter = ("type", "machine_open", "bounce_type")
    search_fields = ("recipient", "provider_message_id", "provider_event_id")
    date_hierarchy = "occurred_at"


@admin.register(StaffTestSend)
class StaffTestSendAdmin(ReadOnlyAdmin):
    list_display = ("sent_at", "user", "template", "recipient", "error")
    list_select_related = ("user", "template")
    search_fields = ("recipient", "user__username")
    date_hierarchy = "sent_at"


@admin.register(EmailBatch)
class EmailBatchAdmin(ReadOnlyAdmin):
    list_display = ("idempotency_key", "status", "error_name", "attempts", "created_at", "sent_at", "last_error")
    list_filter = ("status", "error_name")
    search_fields = ("idempotency_key",)
    exclude = ("messages",)


@admin.register(SendingPause)
class SendingPauseAdmin(ReadOnlyAdmin):
    list_display = ("provider", "cause", "paused_at", "next_probe_at", "probes")
    actions = ("resume",)

    def has_resume_permission(self, request):
        return request.user.has_perm("automations.change_emailqueueitem")

    @admin.action(description="Resume sending now", permissions=["resume"])
    def resume(self, request, queryset):
        from ..drain_control import sending_resume

        resumed = [p.provider for p in queryset if sending_resume(provider=p.provider, by=request.user.username)]
        self.message_user(request, f"Sending resumed: {', '.join(resumed) or 'nothing was paused'}.", messages.SUCCESS)


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("email", "reason", "created_at", "note")
    list_filter = ("reason",)
    search_fields = ("email",)
    fields = ("email", "reason", "note")

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        suppression, _ = suppression_add(
            email=obj.email, reason=obj.reason, note=obj.note or f"Added by {request.user.username}"
        )
        obj.pk = suppression.pk
