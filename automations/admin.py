"""Admin for marketing: rules with their steps, templates with a live preview, the queue, suppressions, analytics.

Thin classes: actions and views call services and selectors. Marketing edits rules, steps and templates, retries and
cancels emails and reads the rest; Support reads the queue, the email events and suppressions (config/roles.py).
"""

from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from jinja2 import TemplateError

from config.admin import ReadOnlyAdmin
from config.charts import daily_lines
from customers.lifecycle import Stage
from customers.models import Customer
from integrations.resend.client import ResendError

from . import selectors, services
from .models import (
    EVENT_CHOICES,
    AutomationRule,
    AutomationStep,
    EmailBatch,
    EmailEvent,
    EmailQueueItem,
    EmailTemplate,
    Enrollment,
    QueueStatus,
    SendingPause,
    StaffTestSend,
    Suppression,
)
from .rendering import customer_context, links_context, render_email, sample_context, subscription_context

# --- templates ----------------------------------------------------------------------------------------------------


def preview_context(*, customer: Customer | None) -> dict:
    if customer is None:
        return sample_context()
    return {
        **sample_context(),
        "customer": customer_context(customer),
        "subscription": subscription_context(customer=customer, event_payload={}) or sample_context()["subscription"],
        "unsubscribe_url": services.unsubscribe_url(email=customer.email),
        **links_context(),
    }


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "category", "subject", "used_by", "retired", "updated_at")
    list_filter = ("category", "retired")
    search_fields = ("name", "subject")
    readonly_fields = ("preview_link", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "description", "category", "retired", "preview_link")}),
        ("Content (Jinja2)", {"fields": ("subject", "preheader", "html_body", "text_body")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(step_count=Count("steps"))

    @admin.display(description="steps using it", ordering="step_count")
    def used_by(self, obj):
        return obj.step_count

    @admin.display(description="preview")
    def preview_link(self, obj):
        if not obj.pk:
            return "Save first, then preview."
        url = reverse("admin:automations_emailtemplate_preview", args=[obj.pk])
        return format_html('<a class="button" href="{}">Preview and send me a test</a>', url)

    def get_urls(self):
        return [
            path(
                "<int:pk>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="automations_emailtemplate_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request, pk):
        template = get_object_or_404(EmailTemplate, pk=pk)
        if not self.has_view_permission(request, template):
            raise PermissionDenied
        customer_id = request.GET.get("customer") or request.POST.get("customer") or ""
        customer = None
        if customer_id:
            pk = _database_id(customer_id)
            customer = Customer.objects.filter(pk=pk).first() if pk else None
            if customer is None:
                messages.warning(request, f"No customer {customer_id[:40]!r}: showing the sample customer instead.")
                customer_id = ""
        error = rendered = None
        try:
            # The same limits as the queue: a runaway template answers here with its error within a second.
            rendered = render_email(template=template, context=preview_context(customer=customer))
        except TemplateError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if request.method == "POST" and rendered is not None:
            if not self.has_change_permission(request, template):
                raise PermissionDenied
            return self._send_test(request, template, rendered, customer_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Preview: {template.name}",
            "template_obj": template,
            "rendered": rendered,
            "error": error,
            "customer": customer,
            "customers": Customer.objects.order_by("-created_at")[:50],
            "can_send": self.has_change_permission(request, template) and bool(request.user.email),
        }
        return TemplateResponse(request, "admin/automations/emailtemplate/preview.html", context)

    def _send_test(self, request, template, rendered, customer_id):
        from .sending import send_test_email

        url = reverse("admin:automations_emailtemplate_preview", args=[template.pk])
        url = f"{url}?customer={customer_id}" if customer_id else url
        test_send = services.staff_test_send_reserve(user=request.user, template=template)
        if test_send is None:
            self.message_user(
                request,
                f"You sent {services.TEST_SENDS_PER_MINUTE} tests in the last minute; wait a minute and try again.",
                messages.WARNING,
            )
            return redirect(url)
        try:
            send_test_email(to=request.user.email, rendered=rendered, marketing=template.category == "marketing")
        except ResendError as exc:
            services.staff_test_send_failed(test_send=test_send, error=str(exc))
            self.message_user(request, f"The test email could not be sent: {exc}", messages.ERROR)
            return redirect(url)
        self.message_user(request, f"Test email sent to {request.user.email}.", messages.SUCCESS)
        return redirect(url)


# --- rules and steps ----------------------------------------------------------------------------------------------


class StepFormSet(forms.BaseInlineFormSet):
    def clean(self):
        # Before the model's unique check, which would say the same thing less clearly.
        orders = []
        kept_history = []
        for form in self.forms:
            if not getattr(form, "cleaned_data", None):
                continue
            if form.cleaned_data.get("DELETE"):
                # The queue items point to the step with PROTECT: say so on the form instead of a ProtectedError.
                if form.instance.pk and services.step_has_history(step=form.instance):
                    kept_history.append(
                        f"Step {form.instance.order} has sent or queued emails and cannot be deleted; "
                        'tick "Retired" instead: it stops sending and keeps its numbers.'
                    )
                continue
            order = form.cleaned_data.get("order")
            if order in orders:
                raise forms.ValidationError(f"Two steps have order {order}; each step needs its own position.")
            orders.append(order)
        if kept_history:
            raise forms.ValidationError(kept_history)
        super().clean()


class StepInline(admin.TabularInline):
    model = AutomationStep
    formset = StepFormSet
    extra = 0
    fields = ("order", "delay", "anchor", "template", "retired")
    ordering = ("order",)


class RuleForm(forms.ModelForm):
    """Checkboxes and plain text instead of raw JSON, so marketing cannot type an event name that does not exist."""

    exit_events = forms.MultipleChoiceField(
        choices=EVENT_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Any of these ends the sequence and cancels its unsent emails.",
    )
    condition_lifecycle_stages = forms.MultipleChoiceField(
        label="Only in lifecycle stages",
        choices=Stage.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any stage.",
    )
    condition_product_ids = forms.CharField(
        label="Only for products",
        required=False,
        help_text="Stripe product ids separated by commas, e.g. prod_ABC, prod_DEF. Empty: every product.",
    )
    condition_vip = forms.NullBooleanField(
        label="VIP",
        required=False,
        widget=forms.Select(choices=[("unknown", "Anyone"), ("true", "Only VIP"), ("false", "Only non-VIP")]),
    )

    class Meta:
        model = AutomationRule
        fields = (
            "name",
            "description",
            "enabled",
            "trigger",
            "reentry",
            "exit_events",
            "condition_product_ids",
            "condition_lifecycle_stages",
            "condition_vip",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["condition_product_ids"] = ", ".join(self.instance.condition_product_ids or [])

    def clean_condition_product_ids(self):
        return [part.strip() for part in self.cleaned_data["condition_product_ids"].split(",") if part.strip()]


@admin.register(AutomationRule)
class AutomationRuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = ("name", "trigger", "enabled", "reentry", "step_count", "active_enrollments")
    list_filter = ("enabled", "trigger")
    search_fields = ("name",)
    inlines = [StepInline]
    fieldsets = (
        (None, {"fields": ("name", "description", "enabled", "trigger", "reentry", "exit_events")}),
        ("Conditions", {"fields": ("condition_product_ids", "condition_lifecycle_stages", "condition_vip")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(step_total=Count("steps", distinct=True))

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        for step_form in formset.forms:
            step = step_form.instance
            if step.pk and step.retired and "retired" in getattr(step_form, "changed_data", ()):
                cancelled = services.step_retire(step_id=step.pk)
                if cancelled:
                    self.message_user(request, f"Step {step.order} retired: {cancelled} pending email(s) cancelled.")

    @admin.display(description="steps", ordering="step_total")
    def step_count(self, obj):
        return obj.step_total

    @admin.display(description="active enrollments")
    def active_enrollments(self, obj):
        return obj.enrollments.filter(status="active").count()

    def get_urls(self):
        return [
            path("analytics/", self.admin_site.admin_view(self.analytics_view), name="automations_analytics"),
            *super().get_urls(),
        ]

    def analytics_view(self, request):
        if not request.user.has_perm("automations.view_emailqueueitem"):
            raise PermissionDenied
        _pause_banner(request)
        since_day, until_day, rule_id, problems = _analytics_parameters(request.GET, today=timezone.now().date())
        for problem in problems:
            messages.warning(request, problem)
        since = timezone.make_aware(datetime.combine(since_day, time.min))
        until = timezone.make_aware(datetime.combine(until_day + timedelta(days=1), time.min))
        analytics = selectors.email_analytics(since=since, until=until, rule_id=rule_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Email analytics",
            "analytics": analytics,
            "chart": daily_lines(analytics.days),
            "rules": AutomationRule.objects.order_by("name"),
            "rule_id": rule_id,
            "since": since_day,
            "until": until_day,
        }
        return TemplateResponse(request, "admin/automations/analytics.html", context)


ANALYTICS_MAX_DAYS = 366  # one query over a year of sent emails; a wider range held a worker for 30 s


def _analytics_parameters(params, *, today):
    """The page's period and rule from the query string, each bad value replaced by a default and explained."""
    problems = []
    since_day = _parse_day(params.get("since"))
    until_day = _parse_day(params.get("until"))
    if params.get("since") and since_day is None:
        problems.append(f"{params['since'][:40]!r} is not a date (YYYY-MM-DD); showing the default period.")
    if params.get("until") and until_day is None:
        problems.append(f"{params['until'][:40]!r} is not a date (YYYY-MM-DD); showing up to today.")
    if until_day is None or until_day > today:
        if until_day is not None:
            problems.append("The period cannot end in the future; showing up to today.")
        until_day = today
    since_day = since_day or until_day - timedelta(days=29)
    if since_day > until_day:
        problems.append("The start date was after the end date; they have been swapped.")
        since_day, until_day = until_day, since_day
    if (until_day - since_day).days + 1 > ANALYTICS_MAX_DAYS:
        since_day = until_day - timedelta(days=ANALYTICS_MAX_DAYS - 1)
        problems.append(f"A period is at most {ANALYTICS_MAX_DAYS} days; showing from {since_day:%Y-%m-%d}.")
    rule_id = None
    raw_rule = params.get("rule") or ""
    if raw_rule:
        rule_id = _database_id(raw_rule)
        if rule_id is None or not AutomationRule.objects.filter(pk=rule_id).exists():
            problems.append(f"No rule {raw_rule[:40]!r}; showing all rules.")
            rule_id = None
    return since_day, until_day, rule_id, problems


def _database_id(value: str) -> int | None:
    """A primary key from a query string, or None: "abc", "²" or a number past bigint must not reach the database."""
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def _parse_day(value):
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None


# --- enrollments, queue, events, suppressions ----------------------------------------------------------------------


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
class EmailQueueItemAdmin(ReadOnlyAdmin):
    list_display = (
        "recipient",
        "template_name",
        "rule_name",
        "status",
        "scheduled_at",
        "attempts",
        "sent_at",
        "last_error_short",
    )
    list_filter = ("status", ("enrollment__rule", admin.RelatedOnlyFieldListFilter), DueFilter)
    list_select_related = ("step__template", "enrollment__rule")
    search_fields = ("recipient", "provider_message_id", "idempotency_key")
    date_hierarchy = "scheduled_at"
    actions = ("retry_now", "cancel_pending")

    def changelist_view(self, request, extra_context=None):
        _pause_banner(request)
        return super().changelist_view(request, extra_context)

    @admin.display(description="template")
    def template_name(self, obj):
        return obj.step.template.name

    @admin.display(description="rule")
    def rule_name(self, obj):
        return obj.enrollment.rule.name

    @admin.display(description="last error")
    def last_error_short(self, obj):
        return obj.last_error[:80]

    def has_retry_permission(self, request):
        # Re-sending and cancelling emails change the queue: staff who may change queue items (superusers, or a role
        # given automations.change_emailqueueitem).
        return request.user.has_perm("automations.change_emailqueueitem")

    @admin.action(description="Retry selected failed emails now", permissions=["retry"])
    def retry_now(self, request, queryset):
        count = services.queue_items_retry_now(item_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} failed email(s) queued again.", messages.SUCCESS)

    @admin.action(description="Cancel selected pending emails", permissions=["retry"])
    def cancel_pending(self, request, queryset):
        count = services.queue_items_cancel(
            item_ids=list(queryset.values_list("pk", flat=True)), reason=f"Cancelled by {request.user.username}"
        )
        self.message_user(request, f"{count} pending email(s) cancelled.", messages.SUCCESS)


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


# --- sending paused by a configuration error (automations.drain_control.sending_pause) -------------------------------


def _pause_banner(request) -> None:
    """On the queue and analytics pages: sending is paused, why, and where to resume it."""
    for pause in SendingPause.objects.all():
        messages.error(
            request,
            format_html(
                "Sending through {} is paused since {} UTC: {}. Emails stay queued; a probe call every "
                'minute resumes it, or <a href="{}">resume it now</a> once the cause is fixed.',
                pause.provider,
                f"{pause.paused_at:%Y-%m-%d %H:%M}",
                pause.cause,
                reverse("admin:automations_sendingpause_changelist"),
            ),
        )


@admin.register(SendingPause)
class SendingPauseAdmin(ReadOnlyAdmin):
    list_display = ("provider", "cause", "paused_at", "next_probe_at", "probes")
    actions = ("resume",)

    def has_resume_permission(self, request):
        return request.user.has_perm("automations.change_emailqueueitem")

    @admin.action(description="Resume sending now", permissions=["resume"])
    def resume(self, request, queryset):
        from .drain_control import sending_resume

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
        suppression, _ = services.suppression_add(
            email=obj.email, reason=obj.reason, note=obj.note or f"Added by {request.user.username}"
        )
        obj.pk = suppression.pk
