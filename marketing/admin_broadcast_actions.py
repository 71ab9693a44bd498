"""The broadcast page's buttons: each a POST to /admin/marketing/broadcast/<id>/act/<action>/ (CSRF-checked by the
admin's view wrapper), allowed to staff who may change broadcasts (Marketing), and each through one service of
marketing.broadcasts. A refused action (BroadcastRefused: the wrong status, a missing reason) or input the page does
not send becomes an error message on the page, never a 500; nothing is changed then.
"""

from datetime import UTC

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import reverse

from integrations.email_transport import SendError

from . import broadcasts
from .broadcast_admin_forms import CancelForm, CapOverrideForm, CustomerChoiceForm, PauseForm, ScheduleForm
from .broadcast_models import Broadcast
from .selectors import SegmentDefinitionError


class BadInput(Exception):
    pass


def valid(form: forms.Form) -> dict:
    if not form.is_valid():
        problems = "; ".join(" ".join(errors) for errors in form.errors.values())
        raise BadInput(problems)
    return form.cleaned_data


def _test_send(request, broadcast: Broadcast) -> str:
    customer = valid(CustomerChoiceForm(request.POST))["customer"]
    if not request.user.email:
        raise BadInput(
            "your staff account has no email address, so the test has nowhere to go; ask an owner to add one"
        )
    sent = broadcasts.broadcast_test_send(
        broadcast=broadcast, to=request.user.email, customer=customer, actor=request.user
    )
    who = f"rendered for {customer}" if customer else "rendered for a sample customer"
    return f"{len(sent)} test email(s), one per variant, sent to {request.user.email}, {who}. No customer got it."


def _send_now(request, broadcast: Broadcast) -> str:
    broadcasts.broadcast_send_now(broadcast=broadcast, actor=request.user)
    return (
        "Sending started: the recipients are being queued now, and the emails go out at the queue's pace. Reload this "
        "page to follow the figures."
    )


def _schedule(request, broadcast: Broadcast) -> str:
    at = valid(ScheduleForm(request.POST))["at"]
    at = at.astimezone(UTC)  # the form reads the time as UTC, the admin's time zone
    broadcasts.broadcast_schedule(broadcast=broadcast, at=at, actor=request.user)
    return f"Scheduled: sending starts {at:%Y-%m-%d %H:%M} UTC, to the audience of that moment."


def _unschedule(request, broadcast: Broadcast) -> str:
    broadcasts.broadcast_unschedule(broadcast=broadcast, actor=request.user)
    return "Unscheduled: the broadcast is a draft again and sends nothing until it is sent or scheduled."


def _pause(request, broadcast: Broadcast) -> str:
    reason = valid(PauseForm(request.POST))["reason"]
    broadcasts.broadcast_pause(broadcast=broadcast, actor=request.user, reason=reason)
    return "Paused: its waiting emails are held and none goes out until it is resumed."


def _resume(request, broadcast: Broadcast) -> str:
    broadcasts.broadcast_resume(broadcast=broadcast, actor=request.user)
    return "Resumed: the held emails go out again at the queue's pace."


def _cancel(request, broadcast: Broadcast) -> str:
    valid(CancelForm(request.POST))
    cancelled = broadcasts.broadcast_cancel(broadcast=broadcast, actor=request.user)
    return f"Cancelled: {cancelled} email(s) not yet sent will not go out. Emails already sent stay sent."


def _cap_override(request, broadcast: Broadcast) -> str:
    data = valid(CapOverrideForm(request.POST))
    broadcasts.broadcast_cap_override_set(
        broadcast=broadcast, ignore=data["ignore"], reason=data["reason"].strip(), actor=request.user
    )
    if data["ignore"]:
        return "This broadcast ignores the frequency cap (consent, topics, suppressions and quiet hours still apply)."
    return "This broadcast keeps to the frequency cap."


ACTIONS = {
    "test_send": _test_send,
    "send_now": _send_now,
    "schedule": _schedule,
    "unschedule": _unschedule,
    "pause": _pause,
    "resume": _resume,
    "cancel": _cancel,
    "cap_override": _cap_override,
}


def broadcast_action_view(model_admin, request, broadcast_id: int, action: str):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if action not in ACTIONS:
        raise Http404("No such action")
    broadcast = Broadcast.objects.filter(pk=broadcast_id).first()
    if broadcast is None:
        raise Http404("No such broadcast")
    if not model_admin.has_change_permission(request, broadcast):
        raise PermissionDenied
    back = reverse("admin:marketing_broadcast_change", args=[broadcast.pk])
    if action == "cancel" and request.POST.get("confirm") != "yes":
        return redirect(reverse("admin:marketing_broadcast_cancel", args=[broadcast.pk]))
    try:
        done = ACTIONS[action](request, broadcast)
    except (BadInput, broadcasts.BroadcastRefused, SegmentDefinitionError, SendError) as exc:
        messages.error(request, f"Nothing was done: {exc}")
        return redirect(back)
    messages.success(request, done)
    return redirect(back)
