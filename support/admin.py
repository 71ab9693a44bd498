from datetime import UTC, datetime, time, timedelta

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin
from integrations import alerts as integration_alerts

from . import admin_saved_replies, markup, selectors, services, ticket_identity  # noqa: F401 (registers its admins)
from .admin_sla import SlaStateFilter, period
from .models import DiscordInteraction, Ticket, TicketAttachment, TicketStatus

INLINE_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "subject",
        "category",
        "suggested_category",
        "status",
        "priority",
        "customer_or_typed_email",
        "claimed_by_name",
        "opened_at",
        "first_staff_response_at",
        "rating",
        "has_error",
    )
    list_filter = (
        "status",
        SlaStateFilter,
        "category",
        "priority",
        "customer__vip_status",
        "claimed_by_name",
        "outside_support_hours",
    )
    search_fields = (
        "customer__email",
        "customer__name",
        "contact_email",
        "discord_username",
        "=discord_user_id",
        "subject",
        "=id",
    )
    list_select_related = ("customer",)
    date_hierarchy = "opened_at"
    actions = ("close_tickets", "reopen_tickets")
    change_list_template = "admin/support/ticket/change_list.html"
    exclude = ("interaction_token", "transcript_html")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "status",
                    "category",
                    "subject",
                    "description",
                    "priority",
                    "customer",
                    "customer_identity",
                    "transcript",
                )
            },
        ),
        ("Conversation", {"fields": ("conversation",)}),
        ("Triage", {"fields": ("suggested_category", "triage_reason", "outside_support_hours")}),
        (
            "Discord",
            {
                "fields": (
                    "discord_username",
                    "discord_user_id",
                    "contact_email",
                    "discord_channel_id",
                    "claimed_by_name",
                    "claimed_at",
                    "last_error",
                    "last_error_at",
                )
            },
        ),
        (
            "Activity",
            {
                "fields": (
                    "opened_at",
                    "message_count",
                    "last_message_at",
                    "first_staff_response_at",
                    "first_responder_name",
                    "inactivity_warned_at",
                )
            },
        ),
        (
            "Close and feedback",
            {
                "fields": (
                    "close_requested_at",
                    "closed_by_name",
                    "close_reason",
                    "closed_at",
                    "close_attempts",
                    "rating",
                    "rating_comment",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        # Everything comes from Discord or the services; staff act through the actions.
        return [f for fieldset in self.fieldsets for f in fieldset[1]["fields"]]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(boolean=True, description="error")
    def has_error(self, obj: Ticket) -> bool:
        return bool(obj.last_error)

    @admin.display(description="customer", ordering="customer__email")
    def customer_or_typed_email(self, obj: Ticket) -> str:
        if obj.customer_id:
            return str(obj.customer)
        return f"unverified: typed email {obj.contact_email}" if obj.contact_email else "—"

    @admin.display(description="who the customer is")
    def customer_identity(self, obj: Ticket) -> str:
        return ticket_identity.identity_html(obj)

    @admin.display(description="messages")
    def conversation(self, obj: Ticket) -> str:
        """The stored messages (kept at close) with their Discord markup rendered (support/markup.py)."""
        messages = selectors.ticket_messages(ticket=obj)
        if not messages:
            return "— (messages are stored when the ticket closes)"
        names = markup.names_for_stored_messages(obj, messages)
        now = timezone.now()
        for message in messages:
            message.html = markup.render(message.content, names=names, now=now)
        return render_to_string("admin/support/ticket/conversation.html", {"messages": messages})

    @admin.display(description="transcript")
    def transcript(self, obj: Ticket) -> str:
        if not obj.transcript_html:
            return "—"
        return format_html(
            '<a href="{}" target="_blank">Open the transcript</a>',
            reverse("admin:support_ticket_transcript", args=[obj.pk]),
        )

    @admin.action(description="Close the selected tickets (transcript saved first)", permissions=["change"])
    def close_tickets(self, request, queryset):
        name = request.user.get_full_name() or request.user.get_username()
        closing = 0
        for ticket in queryset.filter(status=TicketStatus.OPEN):
            services.ticket_close_request(ticket=ticket, by_name=f"{name} (admin)", reason="Closed from the admin")
            closing += 1
        self.message_user(request, f"{closing} ticket(s) closing.", messages.SUCCESS)

    @admin.action(description="Reopen the selected tickets in a new channel", permissions=["change"])
    def reopen_tickets(self, request, queryset):
        reopened = refused = 0
        for ticket in queryset.filter(status__in=[TicketStatus.CLOSED, TicketStatus.NOT_OPENED]):
            if services.ticket_reopen(ticket=ticket):
                reopened += 1
            else:
                refused += 1
        self.message_user(request, f"{reopened} reopening, {refused} refused (the user has an open ticket there).")

    def changelist_view(self, request, extra_context=None):
        for alert in integration_alerts.alerts_active():  # a Discord configuration that stops tickets, on top
            messages.error(request, alert.message)
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("metrics/", view(self.metrics_view), name="support_ticket_metrics"),
            path("<int:ticket_id>/transcript/", view(self.transcript_view), name="support_ticket_transcript"),
            path(
                "<int:ticket_id>/link-discord/",
                view(lambda request, ticket_id: ticket_identity.link_view(self, request, ticket_id)),
                name="support_ticket_link_discord",
            ),
            path(
                "<int:ticket_id>/attachment/<str:attachment_id>/",
                view(self.attachment_view),
                name="support_ticket_attachment",
            ),
            *super().get_urls(),
        ]

    def _require_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied

    def transcript_view(self, request, ticket_id: int):
        self._require_view(request)
        ticket = get_object_or_404(Ticket, pk=ticket_id)
        if not ticket.transcript_html:
            raise Http404("No transcript yet")
        response = HttpResponse(ticket.transcript_html)
        # Customer-written content: no scripts; images from here and custom emoji from Discord's CDN.
        response["Content-Security-Policy"] = (
            f"default-src 'none'; img-src 'self' {markup.EMOJI_CDN}/; style-src 'unsafe-inline'"
        )
        return response

    def attachment_view(self, request, ticket_id: int, attachment_id: str):
        self._require_view(request)
        attachment = get_object_or_404(
            TicketAttachment, message__ticket_id=ticket_id, discord_attachment_id=attachment_id, too_large=False
        )
        inline = attachment.content_type in INLINE_IMAGE_TYPES
        response = HttpResponse(
            bytes(attachment.data or b""),
            content_type=attachment.content_type if inline else "application/octet-stream",
        )
        disposition = "inline" if inline else "attachment"
        response["Content-Disposition"] = f'{disposition}; filename="{attachment.filename.replace(chr(34), "")}"'
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def metrics_view(self, request):
        self._require_view(request)
        since, until = period(request)
        metrics = selectors.support_metrics(
            since=datetime.combine(since, time.min, tzinfo=UTC),
            until=datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC),
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Support metrics",
            "opts": self.model._meta,
            "since": since,
            "until": until,
            "metrics": metrics,
        }
        return TemplateResponse(request, "admin/support/metrics.html", context)


@admin.register(DiscordInteraction)
class DiscordInteractionAdmin(ReadOnlyAdmin):
    list_display = ("interaction_id", "interaction_type", "custom_id", "discord_user_id", "received_at")
    search_fields = ("=interaction_id", "=discord_user_id", "custom_id")
    list_filter = ("interaction_type",)
