from django.contrib import admin, messages

from config.admin import ReadOnlyAdmin

from . import runs, webhooks
from .models import DiscordInvite, PromoCode, WebhookDelivery, WorkflowRun, WorkflowStep


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "provider", "status", "attempts", "received_at", "processed_at", "short_error")
    list_filter = ("provider", "status")
    search_fields = ("dedupe_key", "last_error")
    readonly_fields = ("provider", "dedupe_key", "headers", "body_text", "status", "attempts", "last_error")
    exclude = ("body",)
    actions = ["reprocess"]

    @admin.display(description="body")
    def body_text(self, obj):
        return bytes(obj.body).decode("utf-8", "replace")

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.last_error[:80]

    def has_reprocess_permission(self, request):
        # Viewing deliveries (Support's role) does not include processing them again.
        return request.user.has_perm("integrations.change_webhookdelivery")

    @admin.action(description="Reprocess the selected deliveries", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        count = webhooks.webhook_delivery_reprocess(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} deliveries queued for processing.", messages.SUCCESS)


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


@admin.register(DiscordInvite)
class DiscordInviteAdmin(ReadOnlyAdmin):
    list_display = ("code", "tier", "contact", "state", "created_at", "emailed_at")
    list_filter = ("tier", "state")
    list_select_related = ("contact",)
    search_fields = ("code", "contact__contact_id", "contact__email")


@admin.register(PromoCode)
class PromoCodeAdmin(ReadOnlyAdmin):
    list_display = ("code", "checkout_session_id", "email", "in_shopware_at", "emailed_at")
    search_fields = ("code", "checkout_session_id", "email")
