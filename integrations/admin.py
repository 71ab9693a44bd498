from django.contrib import admin, messages

from core.admin import ReadOnlyAdmin

from . import runs
from .models import DiscordInvite, InboundWebhook, PromoCode, RefusedWebhook, WorkflowRun, WorkflowStep
from .webhooks.admin import InboundDeliveryAdmin
from .webhooks.store import inbound_webhook_reprocess
from .workflows import review


@admin.register(InboundWebhook)
class InboundWebhookAdmin(InboundDeliveryAdmin):
    list_display = (
        "id",
        "provider",
        "status",
        "attempts",
        "received_at",
        "processed_at",
        "next_attempt_at",
        "short_error",
    )
    list_filter = ("provider", "status")
    search_fields = ("dedupe_key", "last_error")
    readonly_fields = (
        "provider",
        "dedupe_key",
        "headers",
        "body_text",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "refused_fields",
    )
    exclude = ("body",)
    reprocess_permission = "integrations.change_inboundwebhook"

    @admin.display(description="body")
    def body_text(self, obj):
        return bytes(obj.body).decode("utf-8", "replace")

    def reprocess_rows(self, queryset) -> int:
        return inbound_webhook_reprocess(delivery_ids=list(queryset.values_list("pk", flat=True)))


@admin.register(RefusedWebhook)
class RefusedWebhookAdmin(ReadOnlyAdmin):
    """Signed deliveries answered 400 because their body could not be read, with the reason."""

    list_display = ("received_at", "provider", "reason", "body_bytes", "remote_ip")
    list_filter = ("provider",)
    search_fields = ("reason",)
    readonly_fields = ("provider", "reason", "received_at", "remote_ip", "headers", "body_bytes", "body_text")
    exclude = ("body",)

    @admin.display(description="body (first 64 KB)")
    def body_text(self, obj):
        return bytes(obj.body).decode("utf-8", "replace")


class WorkflowStepInline(admin.TabularInline):
    model = WorkflowStep
    extra = 0
    can_delete = False
    fields = ("name", "outcome", "detail", "error", "attempts", "started_at", "finished_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "subject", "customer", "status", "attempts", "outcome", "created_at")
    list_filter = ("kind", "status")
    list_select_related = ("customer",)
    search_fields = ("subject", "key", "customer__email", "last_error")
    readonly_fields = (
        "kind",
        "key",
        "subject",
        "customer",
        "status",
        "input",
        "outcome",
        "attempts",
        "last_error",
        "next_attempt_at",
        "created_at",
        "finished_at",
    )
    inlines = [WorkflowStepInline]
    actions = ["retry"]

    def has_retry_permission(self, request):
        # Viewing runs (Support's and Marketing's roles) does not include running them again; the API's retry checks
        # the same permission.
        return request.user.has_perm("integrations.change_workflowrun")

    @admin.action(description="Retry the selected failed runs", permissions=["retry"])
    def retry(self, request, queryset):
        count = runs.workflow_run_retry(run_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} failed runs queued again.", messages.SUCCESS)


class EmailReviewActions:
    """ "Was sent" / "send again" for an email whose send got no answer (the run stopped in needs_review)."""

    def has_resolve_permission(self, request):
        return request.user.has_perm("integrations.change_workflowrun")

    def resolve(self, ids: list[int], sent: bool) -> int:  # the service; each admin names its own
        raise NotImplementedError

    def _resolve(self, request, queryset, *, sent: bool):
        count = self.resolve(list(queryset.values_list("pk", flat=True)), sent)
        what = "recorded as sent" if sent else "to be sent again"
        self.message_user(request, f"{count} emails {what}; their stopped runs are queued again.", messages.SUCCESS)


@admin.register(DiscordInvite)
class DiscordInviteAdmin(EmailReviewActions, ReadOnlyAdmin):
    list_display = ("url_or_state", "tier", "contact", "state", "created_at", "email_requested_at", "emailed_at")
    list_filter = ("tier", "state")
    list_select_related = ("contact",)
    search_fields = ("code", "contact__contact_id", "contact__email")
    actions = ["email_was_sent", "email_send_again"]

    @staticmethod
    def resolve(ids, sent):
        return review.invite_email_resolve(invite_ids=ids, sent=sent)

    @admin.display(description="invite")
    def url_or_state(self, obj):
        return str(obj)

    @admin.action(description="Invite email was sent (checked in Mautic): record it", permissions=["resolve"])
    def email_was_sent(self, request, queryset):
        self._resolve(request, queryset, sent=True)

    @admin.action(description="Invite email was NOT sent (checked in Mautic): send it again", permissions=["resolve"])
    def email_send_again(self, request, queryset):
        self._resolve(request, queryset, sent=False)


@admin.register(PromoCode)
class PromoCodeAdmin(EmailReviewActions, ReadOnlyAdmin):
    list_display = ("code", "checkout_session_id", "email", "in_shopware_at", "email_requested_at", "emailed_at")
    search_fields = ("code", "checkout_session_id", "email")
    actions = ["email_was_sent", "email_send_again"]

    @staticmethod
    def resolve(ids, sent):
        return review.coupon_email_resolve(promo_ids=ids, sent=sent)

    @admin.action(description="Coupon email was sent (checked in Mautic): record it", permissions=["resolve"])
    def email_was_sent(self, request, queryset):
        self._resolve(request, queryset, sent=True)

    @admin.action(description="Coupon email was NOT sent (checked in Mautic): send it again", permissions=["resolve"])
    def email_send_again(self, request, queryset):
        self._resolve(request, queryset, sent=False)
