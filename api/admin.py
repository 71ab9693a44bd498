from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from config.admin import ReadOnlyAdmin

from .models import IdempotencyRecord, ServiceAccountKey

# The library's own key model is unused: every key here belongs to a service account (ServiceAccountKey).
admin.site.unregister(APIKey)


@admin.register(ServiceAccountKey)
class ServiceAccountKeyAdmin(APIKeyModelAdmin):
    """Create a key here: it is shown once, in the message after saving, and only its hash is stored. Revoke it by
    ticking "revoked"; the service account's groups decide what it may do."""

    list_display = ("prefix", "name", "user", "created", "last_used_at", "expiry_date", "_has_expired", "revoked")
    list_filter = ("revoked", "created")
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username")
    autocomplete_fields = ("user",)

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "last_used_at")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("principal", "key", "response_status", "created_at")
    search_fields = ("principal", "key")
