from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from core.admin import ReadOnlyAdmin

from . import services
from .addresses import UnsafeWebhookUrl, url_check
from .models import EVENT_TYPES, OutboundDelivery, WebhookAttempt, WebhookEndpoint


def disabled_endpoints_notify(request) -> None:
    """A warning at the top of the webhook pages for each endpoint that stopped receiving, and why."""
    for endpoint in WebhookEndpoint.objects.filter(enabled=False).exclude(disabled_reason=""):
        messages.warning(
            request,
            f"Nothing is being sent to {endpoint.url}: it was switched off. {endpoint.disabled_reason}. "
            "Once the receiver works again, tick Enabled on the endpoint's page and replay the deliveries it missed.",
        )


class EndpointForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=[(name, name) for name in EVENT_TYPES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "enabled"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            url_check(url)
        except UnsafeWebhookUrl as exc:
            raise ValidationError(str(exc)) from exc
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """The secret is shown once, in the message after the endpoint is created or its secret rotated."""

    form = EndpointForm
    list_display = ("url", "description", "enabled", "disabled_reason", "created_at")
    list_filter = ("enabled",)
    search_fields = ("url", "description")
    readonly_fields = ("disabled_reason", "created_at", "updated_at")
    actions = ["rotate_secret"]

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            disabled_endpoints_notify(request)
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.endpoint_update(
                endpoint=obj,
                url=data["url"],
                event_types=data["event_types"],
                description=data.get("description", ""),
                enabled=data.get("enabled", True),
            )
            return
        created = services.endpoint_create(
            url=data["url"], event_types=data["event_types"], description=data.get("description", "")
        )
        obj.pk = created.pk
        obj.secret = created.secret
        self.message_user(request, self._secret_message(created), messages.WARNING)

    @staticmethod
    def _secret_message(endpoint) -> str:
        return (
            f"The signing secret of {endpoint.url} is {endpoint.secret} . Give it to the receiver now: "
            "it is not shown again (rotate it to get a new one)."
        )

    @admin.action(description="Rotate the signing secret (shows the new one once)")
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            self.message_user(
                request,
                self._secret_message(services.endpoint_rotate_secret(endpoint_id=endpoint.pk)),
                messages.WARNING,
            )


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("attempted_at", "status_code", "duration_ms", "error", "response_body")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(OutboundDelivery)
class OutboundDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("message_id", "event_type", "endpoint", "customer", "status", "attempts", "next_attempt_at")
    list_filter = ("status", "event_type", "endpoint")
    list_select_related = ("endpoint", "customer")
    search_fields = ("message_id", "customer__email")
    inlines = [AttemptInline]
    actions = ["replay"]

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            disabled_endpoints_notify(request)
        return super().changelist_view(request, extra_context)

    def has_replay_permission(self, request):
        return request.user.has_perm("webhooks.change_outbounddelivery")

    @admin.action(description="Replay the selected deliveries (same id and body)", permissions=["replay"])
    def replay(self, request, queryset):
        count = services.deliveries_replay(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} delivery(ies) queued again.", messages.SUCCESS)
