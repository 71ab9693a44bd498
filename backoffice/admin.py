"""The customer's admin page as the customer 360: who they are and where they stand in every app (billing,
automations, support), with the quick actions and the "email as sent" page. The list, the Funnel page and the edit
form are customers' own (customers/admin.py); this registers them with the 360 on top."""

import uuid

from django.contrib import admin
from django.urls import path

from automations.customer_actions import resend_ahead_of_time
from customers import staff_actions
from customers.admin import CustomerAdmin
from customers.models import Customer, StaffActionKind

from . import admin_360
from .customer_360 import RESENDABLE, customer_360, rules_to_enroll_in


@admin.register(Customer)
class Customer360Admin(CustomerAdmin):
    change_form_template = "admin/backoffice/customer/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        customer = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if customer is not None:
            view = customer_360(
                customer=customer,
                timeline_source=request.GET.get("source", ""),
                timeline_page_number=request.GET.get("timeline_page", 1),
            )
            allowed = staff_actions.allowed_actions(request.user)
            extra_context.update(
                c360=view,
                may={action.value: action in allowed for action in staff_actions.ACTIONS},
                resendable=RESENDABLE,
                # Cancelled emails whose own time is still ahead: "Put back" (at that time) or, explicitly, "Send now".
                cancelled_ahead={e.pk for e in view.emails if resend_ahead_of_time(e)},
                # One key per rendering of the page: a resend posted twice from it (a double click, a resubmit) is
                # one request, and queues one copy (backoffice.staff_actions, email_resend).
                resend_key=uuid.uuid4(),
                stage_choices=staff_actions.stage_choices(customer),
                rules=rules_to_enroll_in() if StaffActionKind.ENROLL in allowed else [],
            )
        return super().change_view(request, object_id, form_url, extra_context=extra_context)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/action/<str:action>/",
                self.admin_site.admin_view(lambda request, **kw: admin_360.action_view(self, request, **kw)),
                name="customers_customer_action",
            ),
            path(
                "<path:object_id>/email/<int:item_id>/",
                self.admin_site.admin_view(lambda request, **kw: admin_360.email_as_sent_view(self, request, **kw)),
                name="customers_customer_email",
            ),
            *super().get_urls(),
        ]
