"""Broadcasts in the admin, as Marketing uses them.

- The list: name, status, topic, segment, when it is scheduled or started, and sent of recipients; filtered by status.
- Composing (the add page): name, topic, segment (with "Count the audience", the live count for that topic), the
  template (marketing templates, the same as sequence steps'), an optional A/B test of up to three extra subjects or
  three extra templates, the test share and wait, what to do when the frequency cap or quiet hours hold an email, and
  the audited "ignore the frequency cap" with its reason. Saved through marketing.broadcasts.broadcast_create as a
  draft; nothing is sent.
- The broadcast's page (its change page, whatever its status): state, audience now, buttons (each a POST through one
  service: marketing/admin_broadcast_actions.py), progress figures in total and per variant, the A/B note, the
  deliverability guard's banner, the audit. It works without JavaScript: a reload shows the latest figures.
- The preview page renders every variant for a chosen customer; cancelling asks first.
A broadcast is never deleted here (its recipients and emails are history): Cancel stops it.
"""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from jinja2 import TemplateError

from automations.models import QueueStatus

from . import broadcasts
from .ab_tests import MIN_PER_ARM, ab_plan
from .admin_broadcast_actions import broadcast_action_view
from .admin_broadcast_page import broadcast_page_context
from .audience import segment_audience
from .broadcast_admin_forms import BroadcastComposeForm, CustomerChoiceForm
from .broadcast_figures import broadcast_figures, broadcast_preview
from .broadcast_models import Broadcast
from .selectors import SegmentDefinitionError

COMPOSE_FIELDSETS = (
    (None, {"fields": ("name", "topic", "segment", "template")}),
    (
        "A/B test (optional)",
        {
            "fields": (
                "subject_b",
                "subject_c",
                "subject_d",
                "template_b",
                "template_c",
                "template_d",
                "test_share_percent",
                "test_wait",
            ),
            "description": "Up to three extra subjects (the same email with another subject) or up to three extra "
            "templates. The test share goes out first, split evenly between the variants; after the wait the rest "
            "get the variant with the most unique clicks per delivered email. Each variant needs at least "
            f"{MIN_PER_ARM} recipients in the test share, otherwise no test is run, everyone gets variant A, and the "
            "page says why.",
        },
    ),
    (
        "Frequency cap and quiet hours",
        {"fields": ("when_held", "ignore_frequency_cap", "frequency_cap_override_reason")},
    ),
)


@admin.register(Broadcast)
class BroadcastAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "topic", "segment", "scheduled_or_started", "sent_of_recipients")
    list_filter = ("status",)
    search_fields = ("name",)
    list_select_related = ("topic", "segment")
    add_form_template = "admin/marketing/broadcast/compose.html"

    def get_queryset(self, request):
        sent = Q(recipients__queue_item__status=QueueStatus.SENT)
        return (
            super()
            .get_queryset(request)
            .annotate(recipient_total=Count("recipients"), sent_total=Count("recipients", filter=sent))
        )

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="scheduled / started", ordering="scheduled_at")
    def scheduled_or_started(self, broadcast: Broadcast) -> str:
        if broadcast.started_at:
            return f"started {broadcast.started_at:%Y-%m-%d %H:%M} UTC"
        if broadcast.scheduled_at and broadcast.status == "scheduled":
            return f"scheduled {broadcast.scheduled_at:%Y-%m-%d %H:%M} UTC"
        return "-"

    @admin.display(description="sent / recipients")
    def sent_of_recipients(self, broadcast: Broadcast) -> str:
        return f"{broadcast.sent_total:,} / {broadcast.recipient_total:,}"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:broadcast_id>/act/<str:action>/",
                view(lambda request, **kw: broadcast_action_view(self, request, **kw)),
                name="marketing_broadcast_act",
            ),
            path("<int:broadcast_id>/preview/", view(self.preview_view), name="marketing_broadcast_preview"),
            path("<int:broadcast_id>/cancel/", view(self.cancel_view), name="marketing_broadcast_cancel"),
            *super().get_urls(),
        ]

    # Composing -------------------------------------------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = BroadcastComposeForm(request.POST or None)
        audience_note = ""
        if request.method == "POST":
            valid = form.is_valid()
            if "_count" in request.POST:
                audience_note = compose_audience_note(form)
            elif valid:
                try:
                    broadcast = compose(data=form.cleaned_data, actor=request.user)
                except broadcasts.BroadcastRefused as exc:
                    form.add_error(None, str(exc))
                else:
                    messages.success(
                        request,
                        f"Broadcast “{broadcast.name}” saved as a draft. Nothing is sent yet: send a test, preview "
                        "it, then send it now or schedule it.",
                    )
                    return redirect(reverse("admin:marketing_broadcast_change", args=[broadcast.pk]))
        adminform = helpers.AdminForm(form, list(COMPOSE_FIELDSETS), {}, model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": "Compose a broadcast",
            "subtitle": None,
            "adminform": adminform,
            "object_id": None,
            "original": None,
            "is_popup": False,
            "to_field": None,
            "media": self.media + adminform.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            "audience_note": audience_note,
            **(extra_context or {}),
        }
        return self.render_change_form(request, context, add=True, form_url=form_url, obj=None)

    # The broadcast's page --------------------------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        key = unquote(object_id)
        # Not get_object: the list's queryset counts every recipient's email, which this page does not need.
        broadcast = (
            Broadcast.objects.select_related("topic", "segment", "created_by").filter(pk=int(key)).first()
            if key.isascii() and key.isdigit() and len(key) <= 18
            else None
        )
        if broadcast is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, broadcast):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Broadcast: {broadcast.name}",
            **broadcast_page_context(
                broadcast=broadcast, may_change=self.has_change_permission(request, broadcast), user=request.user
            ),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/marketing/broadcast/page.html", context)

    def preview_view(self, request, broadcast_id: int):
        broadcast = self._viewable(request, broadcast_id)
        form = CustomerChoiceForm(request.GET or None)
        customer = form.cleaned_data["customer"] if form.is_bound and form.is_valid() else None
        previews, error = [], ""
        try:
            previews = broadcast_preview(broadcast=broadcast, customer=customer)
        except (TemplateError, broadcasts.BroadcastRefused) as exc:
            error = f"{type(exc).__name__}: {exc}"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Preview: {broadcast.name}",
            "broadcast": broadcast,
            "form": form,
            "customer": customer,
            "previews": previews,
            "error": error,
        }
        return TemplateResponse(request, "admin/marketing/broadcast/preview.html", context)

    def cancel_view(self, request, broadcast_id: int):
        broadcast = self._viewable(request, broadcast_id)
        if not self.has_change_permission(request, broadcast):
            raise PermissionDenied
        figures = broadcast_figures(broadcast=broadcast) if broadcast.rule_id else None
        totals = figures.totals if figures is not None else None
        unsent = (totals.queued + totals.held) if totals is not None else 0
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Cancel the broadcast “{broadcast.name}”?",
            "broadcast": broadcast,
            "unsent": unsent,
            "sent": totals.sent if totals is not None else 0,
        }
        return TemplateResponse(request, "admin/marketing/broadcast/cancel.html", context)

    def _viewable(self, request, broadcast_id: int) -> Broadcast:
        broadcast = Broadcast.objects.filter(pk=broadcast_id).select_related("topic", "segment").first()
        if broadcast is None:
            raise Http404("No such broadcast")
        if not self.has_view_permission(request, broadcast):
            raise PermissionDenied
        return broadcast


def compose(*, data: dict, actor) -> Broadcast:
    """One transaction: the draft, and its frequency-cap override when asked for (both audited by the services)."""
    with transaction.atomic():
        broadcast = broadcasts.broadcast_create(
            name=data["name"],
            topic=data["topic"],
            segment=data["segment"],
            template=data["template"],
            subject_variants=data["subject_variants"] or None,
            variant_templates=data["variant_templates"] or None,
            when_held=data["when_held"],
            test_share_percent=data["test_share_percent"],
            test_wait=data["test_wait"],
            created_by=actor,
        )
        if data.get("ignore_frequency_cap"):
            broadcasts.broadcast_cap_override_set(
                broadcast=broadcast, ignore=True, reason=data["frequency_cap_override_reason"].strip(), actor=actor
            )
    return broadcast


def compose_audience_note(form: BroadcastComposeForm) -> str:
    """The compose page's "Count the audience": the live count for the chosen segment and topic, and what it means
    for an A/B test (the same function a send uses, marketing.audience.segment_audience)."""
    data = getattr(form, "cleaned_data", {})
    segment, topic = data.get("segment"), data.get("topic")
    if segment is None or topic is None:
        return "Choose a segment and a topic to count the audience."
    try:
        count = segment_audience(
            segment=segment, topic=topic, at=timezone.now(), ignore_frequency_cap=bool(data.get("ignore_frequency_cap"))
        ).count()
    except SegmentDefinitionError as exc:
        return f"The segment “{segment}” cannot be evaluated: {exc}"
    note = format_html(
        '<strong data-compose-audience="{}">{} customers</strong> would receive this broadcast if it started now '
        "(segment “{}”, topic “{}”, after consent, suppressions, the topic choice and the frequency cap).",
        count,
        f"{count:,}",
        segment,
        topic,
    )
    plan = ab_plan(audience=count, variants=form.variant_count, share_percent=data.get("test_share_percent") or 0)
    return format_html("{} {}", note, plan.note) if plan.note else note
