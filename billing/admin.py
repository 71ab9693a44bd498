from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils.html import format_html
from djstripe import models as djstripe_models
from djstripe.admin import admin as djstripe_admin

from core.admin import ReadOnlyAdmin
from customers.models import Customer
from integrations.webhooks.admin import InboundDeliveryAdmin

from .models import StripeEventProcessing, Subscription
from .stripe_webhook.store import stripe_event_reprocess


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = (
        "customer",
        "product_name",
        "status",
        "amount_display",
        "interval",
        "current_period_end",
        "cancel_at_period_end",
        "stripe_subscription_id",
    )
    list_filter = ("status", "product_name", "cancel_at_period_end", "interval")
    list_select_related = ("customer",)
    search_fields = ("customer__email", "=stripe_subscription_id", "=customer__stripe_customer_id", "=product_id")
    date_hierarchy = "stripe_created"
    # Stripe's cancellation codes, in the words of Stripe's dashboard.
    readonly_fields = [
        *(f.name for f in Subscription._meta.fields if f.name not in ("cancellation_reason", "cancellation_feedback")),
        "stripe_reason",
        "customer_feedback",
    ]

    @admin.display(description="Stripe's cancellation reason")
    def stripe_reason(self, obj):
        return obj.cancellation_reason_label if obj.cancellation_reason else "—"

    @admin.display(description="Customer's feedback")
    def customer_feedback(self, obj):
        return obj.cancellation_feedback_label if obj.cancellation_feedback else "—"

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return f"{obj.amount / 100:.2f} {obj.currency.upper()}"


@admin.register(StripeEventProcessing)
class StripeEventProcessingAdmin(InboundDeliveryAdmin):
    """Every Stripe event received, its processing status and last error; failed ones can be reprocessed."""

    list_display = (
        "received_at",
        "event_type",
        "customer",
        "event_id",
        "status",
        "attempts",
        "deliveries",
        "next_attempt_at",
        "short_error",
    )
    list_filter = ("status", "event_type")
    search_fields = ("=event_id", "event_type", "=stripe_customer_id")
    date_hierarchy = "received_at"
    readonly_fields = [*(field.name for field in StripeEventProcessing._meta.fields), "delivery_body"]

    def get_queryset(self, request):
        # The CRM customer behind the event's Stripe customer id, in the list's own query (no query per row).
        crm_customer = Customer.objects.filter(stripe_customer_id=OuterRef("stripe_customer_id")).exclude(
            stripe_customer_id=""
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                customer_pk=Subquery(crm_customer.values("pk")[:1]),
                customer_email=Subquery(crm_customer.values("email")[:1]),
            )
        )

    @admin.display(description="Customer")
    def customer(self, obj):
        if getattr(obj, "customer_pk", None):
            url = reverse("admin:customers_customer_change", args=[obj.customer_pk])
            return format_html('<a href="{}">{}</a>', url, obj.customer_email or obj.stripe_customer_id)
        return obj.stripe_customer_id or "-"

    @admin.display(description="Delivered body")
    def delivery_body(self, obj):
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", obj.trigger.body if obj.trigger else "")

    def reprocess_rows(self, queryset) -> int:
        return sum(
            stripe_event_reprocess(event_id=event_id) for event_id in queryset.values_list("event_id", flat=True)
        )


# dj-stripe's Invoice admin lists `paid`, a property that reads stripe_data["paid"]: Stripe removed that field in API
# version 2025-03-31.basil (STRIPE_API_VERSION), so the list and the change page answered 500 for every invoice synced
# since. The owners' copy shows the invoice's status instead, which says the same (paid, open, void, ...).
class InvoiceAdmin(djstripe_admin.InvoiceAdmin):
    list_display = tuple("status" if field == "paid" else field for field in djstripe_admin.InvoiceAdmin.list_display)

    def get_readonly_fields(self, request, obj=None):
        return [field for field in super().get_readonly_fields(request, obj) if field != "paid"]


admin.site.unregister(djstripe_models.Invoice)
admin.site.register(djstripe_models.Invoice, InvoiceAdmin)
from .retention import admin as retention_admin  # noqa: E402,F401  (the cancellation flow's admin)
