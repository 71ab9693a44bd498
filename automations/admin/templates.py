"""Email templates: the form (every field compiled on save, models.EmailTemplate.clean) and the preview page, which
renders a template for a sample or a real customer and sends a test to the staff member only."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from jinja2 import TemplateError

from customers.models import Customer
from integrations.email_transport import SendError

from ..models import EmailTemplate
from ..render_context import customer_context, links_context, sample_context, subscription_context
from ..rendering import render_email
from ..services.suppressions import unsubscribe_url
from ..services.test_sends import TEST_SENDS_PER_MINUTE, staff_test_send_failed, staff_test_send_reserve
from .common import database_id


def preview_context(*, customer: Customer | None) -> dict:
    if customer is None:
        return sample_context()
    return {
        **sample_context(),
        "customer": customer_context(customer),
        "subscription": subscription_context(customer=customer, event_payload={}) or sample_context()["subscription"],
        "unsubscribe_url": unsubscribe_url(email=customer.email),
        **links_context(),
    }


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "category", "subject_example", "used_by", "retired", "updated_at")
    list_filter = ("category", "retired")
    search_fields = ("name", "subject")
    readonly_fields = ("preview_link", "created_at", "updated_at")

    @admin.display(description="subject (as the sample customer gets it)", ordering="subject")
    def subject_example(self, obj):
        """The subject as a reader sees it, not its template code (which stays in the tooltip and the form)."""
        try:
            subject = render_email(template=obj, context=sample_context()).subject
        except Exception:  # a template that does not render shows as written; its form says why
            return format_html('<span title="Does not render for the sample customer">{}</span>', obj.subject)
        return format_html('<span title="As written: {}">{}</span>', obj.subject, subject)

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
            pk = database_id(customer_id)
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
            "no_email_for_test": self.has_change_permission(request, template) and not request.user.email,
        }
        return TemplateResponse(request, "admin/automations/emailtemplate/preview.html", context)

    def _send_test(self, request, template, rendered, customer_id):
        from ..drain import send_test_email

        url = reverse("admin:automations_emailtemplate_preview", args=[template.pk])
        url = f"{url}?customer={customer_id}" if customer_id else url
        if not request.user.email:
            self.message_user(
                request,
                "Your staff account has no email address, so the test has nowhere to go: ask an owner to add one.",
                messages.ERROR,
            )
            return redirect(url)
        test_send = staff_test_send_reserve(user=request.user, template=template)
        if test_send is None:
            self.message_user(
                request,
                f"You sent {TEST_SENDS_PER_MINUTE} tests in the last minute; wait a minute and try again.",
                messages.WARNING,
            )
            return redirect(url)
        try:
            send_test_email(to=request.user.email, rendered=rendered, marketing=template.category == "marketing")
        except SendError as exc:
            staff_test_send_failed(test_send=test_send, error=str(exc))
            self.message_user(request, f"The test email could not be sent: {exc}", messages.ERROR)
            return redirect(url)
        self.message_user(request, f"Test email sent to {request.user.email}.", messages.SUCCESS)
        return redirect(url)
