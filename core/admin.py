"""Admin building blocks every app shares (no registrations here)."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records that come from elsewhere or are history (timelines, Stripe mirrors, email logs): staff look,
    nobody edits them by hand. Actions that change them call the owning app's services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
