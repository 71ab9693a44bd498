"""Rules and their steps, as marketing edits them: delays in words ("3 days 4 hours"), triggers and exit events by
name with what each means, products picked by name from those synced from Stripe, and each rule's numbers and who is
enrolled now on its page."""

from django import forms
from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from customers.lifecycle import Stage
from customers.models import Topic

from .. import selectors
from ..forms import (
    ANCHOR_HELP,
    EXAMPLES,
    DelayField,
    EventCheckboxes,
    describe_timing,
    event_choices,
    event_table,
    product_choices,
)
from ..models import AutomationRule, AutomationStep, Enrollment, EnrollmentStatus, StepAnchor
from ..services.rules import step_has_history, step_retire
from .analytics import analytics_view
from .rule_state import RuleStateMixin

ENROLLED_NOW_SHOWN = 20


class StepForm(forms.ModelForm):
    delay = DelayField(
        help_text=f"Written like {EXAMPLES}; 0 for no delay. What it counts from is the step's anchor.",
    )

    class Meta:
        model = AutomationStep
        fields = ("order", "delay", "anchor", "template", "retired")


class StepFormSet(forms.BaseInlineFormSet):
    def _construct_form(self, i, **kwargs):
        # One query for the template list of every step's select, not one per step.
        form = super()._construct_form(i, **kwargs)
        if not hasattr(self, "_template_choices"):
            self._template_choices = list(form.fields["template"].choices)
        form.fields["template"].choices = self._template_choices
        return form

    @property
    def empty_form(self):
        form = super().empty_form
        if hasattr(self, "_template_choices"):
            form.fields["template"].choices = self._template_choices
        return form

    def clean(self):
        # Before the model's unique check, which would say the same thing less clearly.
        orders = []
        kept_history = []
        for form in self.forms:
            if not getattr(form, "cleaned_data", None):
                continue
            if form.cleaned_data.get("DELETE"):
                # The queue items point to the step with PROTECT: say so on the form instead of a ProtectedError.
                if form.instance.pk and step_has_history(step=form.instance):
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
    form = StepForm
    formset = StepFormSet
    extra = 0
    fields = ("order", "delay", "anchor", "sent_when", "template", "retired")
    readonly_fields = ("sent_when",)
    ordering = ("order",)

    def get_queryset(self, request):
        # Each row's title ("Trial ending #1: Welcome") names the rule and the template: joined, not one query each.
        return super().get_queryset(request).select_related("rule", "template")

    @admin.display(description="goes out")
    def sent_when(self, obj):
        if not obj.pk:
            return "-"
        timing = describe_timing(delay=obj.delay, anchor=obj.anchor)
        return format_html('<span title="{}">{}</span>', ANCHOR_HELP.get(obj.anchor, ""), timing)


def _anchor_help() -> str:
    rows = format_html_join("", "<li><strong>{}</strong>: {}</li>", ((a.label, ANCHOR_HELP[a]) for a in StepAnchor))
    return format_html("What a step's delay counts from (its anchor):<ul>{}</ul>", rows)


class RuleForm(forms.ModelForm):
    """Checkboxes and names instead of raw JSON, so marketing cannot type an event or product that does not exist."""

    trigger = forms.ChoiceField(
        label="Trigger", choices=event_choices, help_text="The event that enrolls a customer (see the table below)."
    )
    exit_events = forms.MultipleChoiceField(
        choices=event_choices,
        required=False,
        widget=EventCheckboxes,
        help_text="Any of these ends the sequence and cancels its unsent emails.",
    )
    condition_lifecycle_stages = forms.MultipleChoiceField(
        label="Only in lifecycle stages",
        choices=Stage.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any stage.",
    )
    condition_product_ids = forms.MultipleChoiceField(
        label="Only for products",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The products synced from Stripe. None ticked: every product.",
    )
    resume_skip_after = DelayField(
        required=False,
        label="On resume, skip emails late by more than",
        help_text="When the rule is resumed after a pause (or a blocked customer's address is corrected), an email "
        f"whose moment passed longer ago than this is skipped, with the reason, instead of going out late. Written "
        f"like {EXAMPLES}.",
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
            "moves_to_stage",
            "condition_product_ids",
            "condition_lifecycle_stages",
            "condition_vip",
            "resume_skip_after",
            "topic",
            "when_held",
        )

    def clean_when_held(self):
        # Not sent by an older form: the rule keeps its choice.
        return self.cleaned_data.get("when_held") or self.instance.when_held

    def clean_resume_skip_after(self):
        # Left empty (or not sent by an older form): the rule keeps its limit.
        value = self.cleaned_data.get("resume_skip_after")
        return self.instance.resume_skip_after if value is None else value

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["when_held"].required = False
        self.fields["topic"].queryset = Topic.objects.filter(Q(archived=False) | Q(pk=self.instance.topic_id))
        self.fields["enabled"].label = "New enrollments"
        self.fields["enabled"].help_text = (
            "Unticked: nobody new starts this sequence, but customers already in it still get its emails. To hold "
            "those too, use Pause above the form."
        )
        stored = list(self.instance.condition_product_ids or []) if self.instance.pk else []
        products = self.fields["condition_product_ids"]
        products.choices = product_choices(stored)
        if not products.choices:
            products.help_text = "No products are synced from Stripe yet (billing's sync mirrors them): every product."


@admin.register(AutomationRule)
class AutomationRuleAdmin(RuleStateMixin, admin.ModelAdmin):
    form = RuleForm
    list_display = ("name", "trigger_name", "state", "reentry", "step_summary", "active_enrollments")
    list_filter = ("enabled", "trigger")
    search_fields = ("name",)
    inlines = [StepInline]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "description",
                    "enabled",
                    "trigger",
                    "reentry",
                    "exit_events",
                    "moves_to_stage",
                    "resume_skip_after",
                )
            },
        ),
        ("Conditions", {"fields": ("condition_product_ids", "condition_lifecycle_stages", "condition_vip")}),
        (
            "Marketing consent",
            {
                "fields": ("topic", "when_held"),
                "description": "The topic of this rule's marketing emails: a customer who turned it off on their "
                "preference page gets none of them. Transactional steps (payment, account) have no topic and are "
                "never held by topics, the frequency cap or quiet hours.",
            },
        ),
    )

    def get_queryset(self, request):
        active = (
            Enrollment.objects.filter(rule=OuterRef("pk"), status=EnrollmentStatus.ACTIVE)
            .order_by()
            .values("rule")
            .annotate(n=Count("pk"))
            .values("n")
        )
        # A broadcast's hidden rule is managed from its broadcast (marketing), never listed or edited here.
        return (
            super()
            .get_queryset(request)
            .filter(sends_broadcast=False)
            .annotate(active_total=Coalesce(Subquery(active, output_field=IntegerField()), Value(0)))
        )

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # Every rule's steps and their templates in two queries, for the steps column.
        changelist.result_list = changelist.result_list.prefetch_related("steps__template")
        return changelist

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        for step_form in formset.forms:
            step = step_form.instance
            if step.pk and step.retired and "retired" in getattr(step_form, "changed_data", ()):
                cancelled = step_retire(step_id=step.pk)
                if cancelled:
                    self.message_user(request, f"Step {step.order} retired: {cancelled} pending email(s) cancelled.")

    @admin.display(description="trigger", ordering="trigger")
    def trigger_name(self, obj):
        return dict(event_choices()).get(obj.trigger, obj.trigger)

    @admin.display(description="steps")
    def step_summary(self, obj):
        steps = sorted(obj.steps.all(), key=lambda step: step.order)
        return (
            format_html_join(
                "",
                "<div>{}. {}: {}{}</div>",
                (
                    (
                        step.order,
                        step.template.name,
                        describe_timing(delay=step.delay, anchor=step.anchor),
                        " (retired)" if step.retired else "",
                    )
                    for step in steps
                ),
            )
            or "-"
        )

    @admin.display(description="active enrollments", ordering="active_total")
    def active_enrollments(self, obj):
        return obj.active_total

    def get_urls(self):
        return [
            path(
                "analytics/",
                self.admin_site.admin_view(lambda request: analytics_view(self, request)),
                name="automations_analytics",
            ),
            *self.rule_state_urls(),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["events"] = event_table()
        context["anchor_help"] = _anchor_help()
        if obj is not None and obj.pk:
            context["numbers"] = selectors.rule_numbers(rule_id=obj.pk)
            context["enrolled_now"] = selectors.rule_enrolled_now(rule_id=obj.pk, limit=ENROLLED_NOW_SHOWN)
            context["enrolled_now_shown"] = ENROLLED_NOW_SHOWN
            context["enrollments_url"] = (
                reverse("admin:automations_enrollment_changelist")
                + f"?rule__id__exact={obj.pk}&status__exact={EnrollmentStatus.ACTIVE}"
            )
            context["analytics_url"] = reverse("admin:automations_analytics") + f"?rule={obj.pk}"
            context.update(self.rule_state_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)
