"""The local outbox in the admin: read-only, the HTML shown in a sandboxed frame (no script runs, no same origin)."""

from django.conf import settings
from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from .models import OutboxEmail

OUTBOX_BACKEND = "devtools.outbox.EmailBackend"


def outbox_in_use() -> bool:
    """Only where emails land in the outbox (the local run): a production admin has no use for an empty table. Decided
    by the setting alone, so the admin's menu costs no query for it."""
    return settings.EMAIL_BACKEND == OUTBOX_BACKEND


@admin.register(OutboxEmail)
class OutboxEmailAdmin(admin.ModelAdmin):
    list_display = ("created_at", "recipients", "subject", "idempotency_key")
    list_display_links = ("created_at", "subject")
    search_fields = ("subject", "to", "idempotency_key", "message_id")
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "from_email",
        "recipients",
        "subject",
        "message_id",
        "idempotency_key",
        "html_frame",
        "text",
        "header_lines",
        "attachments",
    )
    readonly_fields = fields

    @admin.display(description="to")
    def recipients(self, email: OutboxEmail) -> str:
        return ", ".join([*email.to, *[f"cc {a}" for a in email.cc], *[f"bcc {a}" for a in email.bcc]])

    @admin.display(description="headers")
    def header_lines(self, email: OutboxEmail) -> str:
        return format_html_join(mark_safe("<br>"), "{}: {}", sorted(email.headers.items()))

    @admin.display(description="HTML")
    def html_frame(self, email: OutboxEmail) -> str:
        if not email.html:
            return "(no HTML part)"
        # srcdoc plus an empty sandbox: the email renders as the recipient would see it, in an opaque origin where
        # no script runs and nothing can reach the admin's cookies or pages.
        return format_html(
            '<iframe title="Email as sent" class="outbox-html" sandbox srcdoc="{}" '
            'style="width:720px;max-width:100%;height:640px;border:1px solid #ccc;background:#fff;"></iframe>',
            email.html,
        )

    def has_module_permission(self, request) -> bool:
        return outbox_in_use() and super().has_module_permission(request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser  # clearing the local outbox; nothing else depends on its rows
