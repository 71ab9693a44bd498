"""The one admin shape for stored incoming deliveries: read-only, the last error shortened in the list, and one
"reprocess" action that hands the chosen rows to the store's reprocess service. integrations.InboundWebhook's admin
(integrations/admin.py) and billing's Stripe events admin (billing/admin.py) are both built on it."""

from django.contrib import admin, messages

from core.admin import ReadOnlyAdmin


class InboundDeliveryAdmin(ReadOnlyAdmin):
    actions = ("reprocess",)
    reprocess_permission = ""  # "<app>.change_<model>"; empty: superusers only

    def reprocess_rows(self, queryset) -> int:
        """Queue the rows for processing again; returns how many were queued."""
        raise NotImplementedError

    @admin.display(description="Last error")
    def short_error(self, obj):
        return obj.last_error[:80]

    def has_reprocess_permission(self, request):
        # Viewing deliveries (Support's role) does not include processing them again.
        if not self.reprocess_permission:
            return request.user.is_superuser
        return request.user.has_perm(self.reprocess_permission)

    @admin.action(description="Reprocess the selected deliveries", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        count = self.reprocess_rows(queryset)
        self.message_user(request, f"{count} deliveries queued for processing.", messages.SUCCESS)
