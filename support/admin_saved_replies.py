"""Admin for saved replies (Support and Marketing), where they were used, and the tickets they avoided."""

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.html import format_html
from jinja2 import TemplateError

from core.admin import ReadOnlyAdmin

from . import saved_replies
from .reply_models import PanelSuggestion, SavedReply, SavedReplyUse, SuggestionOutcome


class SavedReplyForm(forms.ModelForm):
    class Meta:
        model = SavedReply
        fields = ("title", "category", "public", "keywords", "body")
        widgets = {"body": forms.Textarea(attrs={"rows": 10, "cols": 90})}

    def clean_body(self):
        body = self.cleaned_data["body"]
        problem = saved_replies.saved_reply_body_errors(body=body, title=self.cleaned_data.get("title", ""))
        if problem:
            raise forms.ValidationError(problem)
        return body


@admin.register(SavedReply)
class SavedReplyAdmin(admin.ModelAdmin):
    form = SavedReplyForm
    list_display = ("title", "category_or_all", "public", "times_used", "tickets_avoided", "updated_at", "updated_by")
    list_filter = ("public", "category")
    search_fields = ("title", "keywords", "body")
    readonly_fields = ("preview", "updated_by", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("title", "category", "public", "keywords", "body")}),
        ("As the sample customer reads it", {"fields": ("preview",)}),
        (None, {"fields": ("updated_by", "created_at", "updated_at")}),
    )
    change_list_template = "admin/support/savedreply/change_list.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                use_count=Count("uses", distinct=True),
                avoided_count=Count(
                    "tickets_avoided", filter=Q(tickets_avoided__outcome=SuggestionOutcome.SOLVED), distinct=True
                ),
            )
        )

    @admin.display(description="category", ordering="category")
    def category_or_all(self, obj: SavedReply) -> str:
        return obj.get_category_display() or "All categories"

    @admin.display(description="times used", ordering="use_count")
    def times_used(self, obj: SavedReply) -> int:
        return obj.use_count

    @admin.display(description="tickets avoided", ordering="avoided_count")
    def tickets_avoided(self, obj: SavedReply) -> int:
        return obj.avoided_count

    @admin.display(description="preview")
    def preview(self, obj: SavedReply) -> str:
        if not obj.pk:
            return "— (shown once saved)"
        try:
            text = saved_replies.saved_reply_preview(saved_reply=obj)
            return format_html('<pre style="white-space:pre-wrap" id="saved-reply-preview">{}</pre>', text)
        except TemplateError as exc:
            return f"Cannot be filled in: {exc}"

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user.get_username()
        super().save_model(request, obj, form, change)

    def changelist_view(self, request, extra_context=None):
        since = timezone.now() - timedelta(days=30)
        solved = PanelSuggestion.objects.filter(outcome=SuggestionOutcome.SOLVED)
        extra_context = {
            **(extra_context or {}),
            "tickets_avoided": solved.count(),
            "tickets_avoided_30_days": solved.filter(decided_at__gte=since).count(),
        }
        return super().changelist_view(request, extra_context)


@admin.register(PanelSuggestion)
class PanelSuggestionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "discord_username", "category", "subject", "outcome", "solved_by", "ticket")
    list_filter = ("outcome", "category")
    search_fields = ("discord_username", "=discord_user_id", "subject")
    list_select_related = ("solved_by", "ticket")
    date_hierarchy = "created_at"


@admin.register(SavedReplyUse)
class SavedReplyUseAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "saved_reply", "ticket", "via", "staff_name", "posted_at", "last_error")
    list_filter = ("via",)
    search_fields = ("=ticket__id", "staff_name", "saved_reply__title")
    list_select_related = ("saved_reply", "ticket")
