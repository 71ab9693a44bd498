"""Admin for SLA targets, category staff roles, the SLA pings, the tickets' SLA filter and the SLA metrics page."""

from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from core.admin import ReadOnlyAdmin

from .models import Ticket
from .sla import sla_state_filter
from .sla_metrics import sla_metrics
from .sla_models import CategoryStaffRole, SlaAlert, SlaTarget, TicketResponse


class SlaStateFilter(admin.SimpleListFilter):
    """The ticket list's "SLA" filter: tickets about to miss their target, missing it now, or that ever missed one."""

    title = "SLA"
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return [
            ("breaching", "About to miss the target"),
            ("breached", "Waiting past the target"),
            ("missed", "Missed a target (now or earlier)"),
        ]

    def queryset(self, request, queryset):
        if self.value() in ("breaching", "breached", "missed"):
            return queryset.filter(sla_state_filter(self.value(), now=timezone.now())).distinct()
        return queryset


def period(request, *, default_days: int = 30) -> tuple[date, date]:
    """The page's ?since=&until= dates (inclusive), the last `default_days` days when missing or unreadable."""
    today = timezone.now().date()
    try:
        since = date.fromisoformat(request.GET.get("since") or str(today - timedelta(days=default_days)))
        until = date.fromisoformat(request.GET.get("until") or str(today))
    except ValueError:
        since, until = today - timedelta(days=default_days), today
    return since, until


@admin.register(SlaTarget)
class SlaTargetAdmin(admin.ModelAdmin):
    list_display = ("__str__", "first_response_minutes", "next_response_minutes", "warn_minutes")
    list_filter = ("priority", "category")

    def get_urls(self):
        metrics = self.admin_site.admin_view(self.metrics_view)
        return [path("metrics/", metrics, name="support_sla_metrics"), *super().get_urls()]

    def metrics_view(self, request):
        if not request.user.has_perm("support.view_ticket"):
            raise PermissionDenied
        since, until = period(request)
        figures = sla_metrics(
            since=datetime.combine(since, time.min, tzinfo=UTC),
            until=datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC),
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Support response times: support hours and wall clock",
            "opts": Ticket._meta,
            "since": since,
            "until": until,
            "hours": settings.DISCORD_SUPPORT_HOURS,
            "timezone": settings.DISCORD_SUPPORT_TIMEZONE,
            "tables": [
                ("Overall", [figures["overall"]]),
                ("Per category", figures["categories"]),
                ("Per staff member (who answered)", figures["staff"]),
            ],
        }
        return TemplateResponse(request, "admin/support/sla_metrics.html", context)


@admin.register(CategoryStaffRole)
class CategoryStaffRoleAdmin(admin.ModelAdmin):
    list_display = ("category", "role_id", "role_name")


@admin.register(SlaAlert)
class SlaAlertAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "ticket", "kind", "response_number", "due_at", "role_id", "sent_at", "last_error")
    list_filter = ("kind",)
    search_fields = ("=ticket__id",)
    list_select_related = ("ticket",)


@admin.register(TicketResponse)
class TicketResponseAdmin(ReadOnlyAdmin):
    list_display = (
        "ticket", "number", "kind", "responder_name", "answered_at", "support_seconds", "wall_seconds", "breached",
    )  # fmt: skip
    list_filter = ("kind", "breached", "ticket__category")
    search_fields = ("=ticket__id", "responder_name")
    list_select_related = ("ticket",)
    date_hierarchy = "answered_at"
