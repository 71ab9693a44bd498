"""The cancellation flow in the admin: Marketing edits the save offer of each reason; everyone who may sees the
sessions and the Stripe changes they led to (read-only: only the page and the services write them)."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin

from .models import CancelSession, SaveOffer, SubscriptionChange


@admin.register(SaveOffer)
class SaveOfferAdmin(admin.ModelAdmin):
    list_display = ("reason", "kind", "enabled", "__str__", "updated_at")
    list_filter = ("kind", "enabled")
    fieldsets = (
        (None, {"fields": ("reason", "kind", "enabled")}),
        ("Pause", {"fields": ("pause_months",)}),
        ("Discount", {"fields": ("discount_percent", "discount_months")}),
        ("Move to a cheaper plan", {"fields": ("downgrade_price_id", "downgrade_plan_name", "downgrade_amount")}),
    )


@admin.register(CancelSession)
class CancelSessionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "customer", "reason", "offer_kind", "holdout", "outcome", "change")
    list_filter = ("outcome", "offer_kind", "holdout", "offer_eligible", "reason")
    list_select_related = ("customer", "change")
    search_fields = ("customer__email", "=subscription__stripe_subscription_id")
    date_hierarchy = "created_at"


@admin.register(SubscriptionChange)
class SubscriptionChangeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "subscription", "kind", "status", "attempts", "requested_by", "key")
    list_filter = ("kind", "status")
    list_select_related = ("subscription", "requested_by")
    search_fields = ("key", "=subscription__stripe_subscription_id")
