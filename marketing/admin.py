"""Segments as Marketing builds them: conditions as rows (field, operator, value in words), and on the segment's page
who a marketing email to it would reach now, counted by the same function a send uses (marketing.audience)."""

from django.contrib import admin
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from .audience import segment_summary
from .conditions import FIELD_LABELS, FIELDS, LIST_OPERATORS, OPERATOR_LABELS, PERIOD
from .forms import SegmentConditionForm
from .models import Match, Operator, Segment, SegmentCondition
from .selectors import segment_list

SAMPLE_SIZE = 20


class SegmentConditionInline(admin.TabularInline):
    model = SegmentCondition
    form = SegmentConditionForm
    extra = 1
    verbose_name = "condition"


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "match", "condition_count", "created_by", "updated_at")
    search_fields = ("name", "description")
    list_select_related = ("created_by",)
    inlines = [SegmentConditionInline]
    readonly_fields = ("reach_now", "writing_conditions", "created_by", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "description", "match")}),
        ("Who it reaches now", {"fields": ("reach_now",)}),
        ("Writing conditions", {"fields": ("writing_conditions",), "classes": ("collapse",)}),
        ("History", {"fields": ("created_by", "created_at", "updated_at"), "classes": ("collapse",)}),
    )

    def get_queryset(self, request):
        return segment_list().annotate(condition_count=Count("conditions"))

    @admin.display(description="conditions", ordering="condition_count")
    def condition_count(self, segment: Segment) -> int:
        return segment.condition_count

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="Reach now")
    def reach_now(self, segment: Segment) -> str:
        if not segment.pk:
            return "Save the segment to see who it reaches."
        summary = segment_summary(segment=segment, at=timezone.now(), sample_size=SAMPLE_SIZE)
        if summary.problem:
            return format_html('<p class="errornote">This segment cannot be evaluated: {}</p>', summary.problem)
        conditions = list(segment.conditions.all())
        joined = " and " if segment.match == Match.ALL else " or "
        rule = joined.join(str(condition) for condition in conditions) or "every customer (no condition)"
        sample = format_html_join(
            "",
            '<li><a href="{}">{}</a></li>',
            ((reverse("admin:customers_customer_change", args=[c.pk]), str(c)) for c in summary.sample),
        )
        return format_html(
            '<p><strong data-segment-audience="{}">{} customers</strong> would receive a marketing email sent to this '
            "segment now.</p><p>{} customers match: {}. {} of them cannot receive marketing email (no consent, no "
            "email address, or a suppressed address).</p>{}",
            summary.audience,
            f"{summary.audience:,}",
            f"{summary.matching:,}",
            rule,
            f"{summary.matching - summary.audience:,}",
            format_html("<p>The newest {} of them:</p><ul>{}</ul>", len(summary.sample), sample)
            if summary.sample
            else "",
        )

    @admin.display(description="How to write a condition")
    def writing_conditions(self, segment: Segment) -> str:
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", _field_rows())
        return format_html(
            "<table><thead><tr><th>field</th><th>operators</th><th>value</th></tr></thead><tbody>{}</tbody></table>"
            "<p>“In the last N days” counts back from the moment the segment is evaluated (a send, this page). "
            "Dates are UTC days, both included. Several values are separated by commas.</p>",
            rows,
        )


def _field_rows():
    for name, spec in FIELDS.items():
        operators = ", ".join(OPERATOR_LABELS[operator] for operator in spec.operators)
        yield FIELD_LABELS[name], operators, _value_help(spec)


def _value_help(spec) -> str:
    if spec.operators[0] in LIST_OPERATORS:
        if spec.choices is None:
            return spec.values_word
        labels = [str(label) for _value, label in spec.choices()]
        return f"{spec.values_word}, by name or id: {', '.join(labels[:30]) or 'none yet'}"
    if spec.operators[0] == Operator.YES:
        return "nothing"
    if spec.operators == PERIOD:
        return "a number of days, or two dates: 2026-01-01 to 2026-03-31"
    return "a number of days"


from . import admin_broadcasts  # noqa: E402, F401  (registers the broadcast admin)
