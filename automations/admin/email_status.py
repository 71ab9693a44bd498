"""The queue list's status as it will turn out: a pending email the queue will refuse shows "Blocked" with why, one
of a paused rule "Paused" (automations/email_state.py), and a filter for the emails that will not go out."""

from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html

from ..email_state import blocked_pending_q, shown_states
from ..models import QueueStatus


class WillGoOutFilter(admin.SimpleListFilter):
    title = "will it go out"
    parameter_name = "goes_out"

    def lookups(self, request, model_admin):
        return [
            ("blocked", "Blocked (address suppressed or no consent)"),
            ("held", "Held with its rule"),
            ("waiting", "Waiting to go out"),
        ]

    def queryset(self, request, queryset):
        blocked = Q(status=QueueStatus.SUPPRESSED) | blocked_pending_q()
        paused = Q(status=QueueStatus.PAUSED) | Q(status=QueueStatus.PENDING, enrollment__rule__paused_at__isnull=False)
        if self.value() == "blocked":
            return queryset.filter(blocked)
        if self.value() == "held":
            return queryset.filter(paused).exclude(blocked)
        if self.value() == "waiting":
            return (
                queryset.filter(status__in=[QueueStatus.PENDING, QueueStatus.SENDING]).exclude(blocked).exclude(paused)
            )
        return queryset


class ShownStatusMixin:
    """For EmailQueueItemAdmin: the page's rows get their shown state in one query (their addresses' suppressions)."""

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)  # evaluated once: the page renders these same objects
        states = shown_states(rows)
        for row in rows:
            row.shown_state = states[row.pk]
        return changelist

    @admin.display(description="status", ordering="status")
    def shown_status(self, obj):
        state = getattr(obj, "shown_state", None)
        if state is None:
            return obj.get_status_display()
        if not state.reason or state.key not in ("blocked", "paused"):
            return format_html('<span data-status="{}">{}</span>', state.key, state.label)
        return format_html(
            '<span data-status="{}" title="{}"><strong>{}</strong>: {}</span>',
            state.key,
            state.reason,
            state.label,
            state.reason,
        )
