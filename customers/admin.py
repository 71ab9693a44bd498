import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin

from . import funnel, list_filters, services, staff_actions
from .events import domain_event_dispatch
from .models import (
    ConsentRecord,
    Customer,
    DomainEvent,
    StaffAction,
    StageTransition,
    TimelineEvent,
    Topic,
    TopicSubscription,
)
from .timeline_labels import timeline_kind_label

# What staff without full rights (Support) may edit on a customer: the contact details. Billing state (stage, Stripe
# ids, consent, VIP, promo) is read-only for them; consent and stage change through the 360's quick actions.
CONTACT_FIELDS = ("email", "name", "discord_user_id")


class CustomerAdmin(admin.ModelAdmin):
    """The customer list, the Funnel page and the edit form. Registered with the customer 360 page on top by
    backoffice/admin.py (the 360 reads billing, automations and support, which customers does not import)."""

    list_display = (
        "email",
        "name",
        "lifecycle_stage",
        "vip_status",
        "opt_in_confirmed",
        "stripe_customer_id",
        "created_at",
    )
    list_filter = (
        "lifecycle_stage",
        list_filters.StageEnteredFilter,
        list_filters.CreatedFilter,
        "vip_status",
        "opt_in_confirmed",
    )
    search_fields = (
        "email",
        "name",
        "=stripe_customer_id",
        "=discord_user_id",
        "=mautic_contact_id",
        "=espocrm_lead_id",
        "promo_code",
    )
    # Metadata is bookkeeping written by the services (other Stripe ids, a conflicting email, the demo flag): shown,
    # never edited by hand, so a form save cannot drop or clobber it.
    readonly_fields = (
        "lifecycle_stage",
        "stage_changed_at",
        "created_at",
        "updated_at",
        "metadata_display",
    )
    date_hierarchy = "created_at"
    # Invite links typed without a scheme are https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"form_class": forms.URLField, "assume_scheme": "https"}}
    change_list_template = "admin/customers/customer/change_list.html"
    fieldsets = (
        (None, {"fields": ("email", "name", "lifecycle_stage", "stage_changed_at")}),
        (
            "Marketing",
            {
                "fields": (
                    "opt_in_confirmed",
                    "vip_status",
                    "promo_code",
                    "discord_invite_link_vip",
                    "discord_invite_link_basic",
                )
            },
        ),
        (
            "Other systems",
            {"fields": ("stripe_customer_id", "discord_user_id", "mautic_contact_id", "espocrm_lead_id")},
        ),
        ("More", {"classes": ("collapse",), "fields": ("metadata_display", "created_at", "updated_at")}),
    )

    @admin.display(description="Metadata")
    def metadata_display(self, obj):
        if not obj.metadata:
            return "-"
        return format_html("<pre>{}</pre>", json.dumps(obj.metadata, indent=2, sort_keys=True, ensure_ascii=False))

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # Identity comes from Stripe (customer_upsert): a Stripe customer's email is changed in Stripe.
            fields += ["stripe_customer_id"] + (["email"] if obj.stripe_customer_id else [])
            if not request.user.is_superuser:
                editable = [f for f in CONTACT_FIELDS if f not in fields]
                fields += [f.name for f in Customer._meta.fields if f.editable and f.name not in editable]
        return list(dict.fromkeys(fields))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and not obj.stripe_customer_id and "email" in form.base_fields:
            form.base_fields["email"].required = True  # found by email alone: it cannot be emptied
        return form

    def save_model(self, request, obj, form, change):
        settable = {name: form.cleaned_data[name] for name in form.changed_data if name in services.UPDATABLE_FIELDS}
        if change:
            changes = {name: (form.initial.get(name), form.cleaned_data[name]) for name in form.changed_data}
            if "email" in form.changed_data:
                services.customer_change_email(customer=obj, email=form.cleaned_data["email"])
            services.customer_update(customer=obj, **settable)
            staff_actions.contact_edit(actor=request.user, customer=obj, changes=changes)
        else:
            customer, _ = services.customer_upsert(
                email=form.cleaned_data["email"],
                stripe_customer_id=form.cleaned_data.get("stripe_customer_id", ""),
                **settable,
            )
            obj.pk = customer.pk
            obj.refresh_from_db()

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # "Customers who entered Churned between … and … UTC": what a link from a figure is showing.
        changelist.period_heading = list_filters.list_heading(changelist.filter_specs)
        return changelist

    def get_urls(self):
        return [
            path("funnel/", self.admin_site.admin_view(self.funnel_view), name="customers_customer_funnel"),
            *super().get_urls(),
        ]

    def funnel_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        requested = request.GET.get("days", "")
        # isascii: "²".isdigit() is true but int() refuses it.
        days = int(requested) if requested.isascii() and requested.isdigit() and 0 < int(requested) <= 3650 else 30
        until = timezone.now()
        rows, _ = funnel.funnel_rows(since=funnel.period_start(days=days, now=until), until=until)
        widest = max([row["now"] for row in rows] + [row["entered"] for row in rows] + [1])
        for row in rows:
            row["now_pct"] = round(100 * row["now"] / widest)
            row["entered_pct"] = round(100 * row["entered"] / widest)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Customer funnel",
            "rows": rows,
            "days": days,
        }
        return TemplateResponse(request, "admin/customers/funnel.html", context)


@admin.register(TimelineEvent)
class TimelineEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "customer", "source", "what", "summary")
    list_filter = ("source", "kind")
    list_select_related = ("customer",)
    search_fields = ("customer__email", "kind", "=object_id", "=source_key")
    autocomplete_fields = ("customer",)
    date_hierarchy = "occurred_at"

    @admin.display(description="What happened", ordering="kind")
    def what(self, obj):
        return format_html('<span title="{}">{}</span>', obj.kind, timeline_kind_label(obj.kind))


@admin.register(StageTransition)
class StageTransitionAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "customer", "from_stage", "to_stage", "cause", "forced")
    list_filter = ("to_stage", "from_stage", "forced")
    list_select_related = ("customer",)
    search_fields = ("customer__email", "cause")
    date_hierarchy = "occurred_at"


@admin.register(DomainEvent)
class DomainEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "name", "customer", "dispatched_at", "attempts", "short_error")
    list_filter = ("name", ("dispatched_at", admin.EmptyFieldListFilter))
    list_select_related = ("customer",)
    search_fields = ("customer__email", "=key")
    actions = ("dispatch_now",)

    @admin.display(description="Last error")
    def short_error(self, obj):
        return obj.last_error[:80]

    @admin.action(description="Dispatch the selected pending events now")
    def dispatch_now(self, request, queryset):
        done = sum(
            domain_event_dispatch(event_id=pk)
            for pk in queryset.filter(dispatched_at=None).values_list("pk", flat=True)
        )
        self.message_user(request, f"{done} event(s) dispatched.", messages.SUCCESS)

    def has_change_permission(self, request, obj=None):
        # Needed for the action; the form itself stays read-only.
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]


@admin.register(StaffAction)
class StaffActionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_name", "action", "customer", "reason")
    list_filter = ("action",)
    list_select_related = ("customer",)
    search_fields = ("customer__email", "actor_name", "reason")
    date_hierarchy = "created_at"


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "customer", "topic", "opt_in", "source", "actor_name", "reason")
    list_filter = ("opt_in", "source", "topic")
    list_select_related = ("customer", "topic")
    search_fields = ("customer__email", "reason")


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    """Marketing's topics. A topic in use is archived, not deleted (rules and consent records point to it)."""

    list_display = ("name", "slug", "subscribed_by_default", "position", "archived", "turned_off")
    list_editable = ("position",)
    list_filter = ("archived",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(off=models.Count("subscriptions", filter=models.Q(subscriptions__subscribed=False)))
        )

    @admin.display(description="customers who turned it off", ordering="off")
    def turned_off(self, obj):
        return obj.off


@admin.register(TopicSubscription)
class TopicSubscriptionAdmin(ReadOnlyAdmin):
    """Customers' own topic choices (written by the preference page and the one-click unsubscribe)."""

    list_display = ("customer", "topic", "subscribed", "updated_at")
    list_filter = ("topic", "subscribed")
    list_select_related = ("customer", "topic")
    search_fields = ("customer__email",)
