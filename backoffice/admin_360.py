"""The customer 360's quick actions and its "email as sent" page: thin views over the quick actions
(customers/staff_actions.py, backoffice/staff_actions.py).

Each action is a POST (CSRF-checked by the admin's views) to /admin/customers/customer/<id>/action/<name>/ with a
reason; the view checks the staff member's permission for that action (403 otherwise), calls the service, puts the
outcome in a message and returns to the customer's page.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from automations.customer_selectors import customer_email_as_sent
from automations.models import EmailQueueItem
from customers import staff_actions


def action_view(model_admin, request, object_id: str, action: str):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if action not in staff_actions.ACTIONS:
        raise Http404("No such action")
    customer = model_admin.get_object(request, object_id)
    if customer is None:
        raise Http404("No such customer")
    if not model_admin.has_view_permission(request, customer) or not staff_actions.may(request.user, action):
        raise PermissionDenied
    form = staff_actions.ACTIONS[action].form(request.POST)
    back = reverse("admin:customers_customer_change", args=[customer.pk])
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        messages.error(request, f"Nothing done: {problems}")
        return redirect(back)
    try:
        done = staff_actions.action_run(name=action, actor=request.user, customer=customer, data=form.cleaned_data)
    except staff_actions.ActionRefused as exc:
        messages.error(request, f"Nothing done: {exc}")
    else:
        messages.success(request, f"Done: {done.message}. Recorded in the customer's staff actions.")
    return redirect(back)


def _sent_message(item: EmailQueueItem) -> dict | None:
    """The message exactly as handed to the provider: the rendered entry stored in the item's batch."""
    if item.batch is None:
        return None
    return next((entry["message"] for entry in item.batch.messages if entry.get("item_id") == item.pk), None)


def email_as_sent_view(model_admin, request, object_id: str, item_id: int):
    customer = model_admin.get_object(request, object_id)
    if customer is None:
        raise Http404("No such customer")
    # The emails sent to a customer are part of their record: whoever reads the customer reads them ("did you get my
    # email?"); the queue item's own admin page stays behind automations.view_emailqueueitem.
    if not model_admin.has_view_permission(request, customer):
        raise PermissionDenied
    item = customer_email_as_sent(customer=customer, item_id=item_id)
    if item is None:
        raise Http404("No such email for this customer")
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": customer,
        "title": f"{item.step.template.name} to {item.recipient}",
        "item": item,
        "message": _sent_message(item),
        "events": list(item.events.order_by("occurred_at", "id")),
        "may_open_queue_item": request.user.has_perm("automations.view_emailqueueitem"),
    }
    return TemplateResponse(request, "admin/backoffice/customer/email_as_sent.html", context)
