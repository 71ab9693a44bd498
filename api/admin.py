from django.contrib import admin
from django.contrib.auth import get_user_model
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from core.admin import ReadOnlyAdmin

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

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            # Only service accounts: active users who cannot log in to the admin. A key acting as a superuser or a
            # staff member would carry their permissions without their password or second factor.
            kwargs["queryset"] = (
                get_user_model().objects.filter(is_active=True, is_staff=False, is_superuser=False).order_by("username")
            )
            kwargs.setdefault(
                "help_text",
                "The service account this key acts as (a user without admin access, e.g. in the "
                '"Service accounts" group); its groups and permissions apply.',
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "last_used_at")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("principal", "key", "response_status", "created_at")
    search_fields = ("principal", "key")
