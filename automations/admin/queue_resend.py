"""The queue page's resend actions, each through a confirmation page that says what will happen to every email.

- "Resend selected emails…": a sent email, or one whose outcome is unknown (after checking the provider's log by its
  Idempotency-Key), gets a new copy under a new key, sent within minutes; a cancelled email goes back into its
  sequence at its own time (a cancelled "a month since your server stopped" must not overtake step 2).
- "Send selected emails now…": the explicit choice to send at once, even ahead of an email's own time.

Every email is resent through the customer 360's audited action ("email_resend", backoffice/staff_actions.py): a
`StaffAction` row and a timeline entry per email, with the reason given on the confirmation page. Who may: whoever may
retry and cancel emails (change on queue items: superusers and Marketing, config/roles.py), as before.
"""

import uuid

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from ..customer_actions import resend_ahead_of_time
from ..models import EmailQueueItem, EnrollmentStatus, QueueStatus
from ..transports import transport_class

RESENDABLE = (QueueStatus.SENT, QueueStatus.UNCONFIRMED, QueueStatus.CANCELLED)


class ConfirmResendForm(forms.Form):
    reason = forms.CharField(max_length=500, strip=True, label="Why (kept in each customer's history)")
    request_key = forms.UUIDField(widget=forms.HiddenInput)


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def what_will_happen(item: EmailQueueItem, *, send_now: bool, now) -> tuple[bool, str]:
    """(whether it will be resent, in words a support person reads) for one selected email."""
    if item.status == QueueStatus.FAILED:
        return False, "Failed: use “Retry selected failed emails now” instead."
    if item.status not in RESENDABLE:
        return False, f"{item.get_status_display()}: nothing to resend, left as it is."
    if item.enrollment.status == EnrollmentStatus.EXITED:
        return False, "The customer left this sequence: not resent (enroll them again instead)."
    if not item.customer.email:
        return False, "The customer has no email address: not resent."
    if item.status == QueueStatus.CANCELLED:
        if resend_ahead_of_time(item, now=now):
            if send_now:
                return True, (
                    f"Never sent. Goes out within minutes, AHEAD of its own time ({_when(item.scheduled_at)}) and of "
                    "any earlier email of its sequence still waiting."
                )
            return True, f"Never sent. Goes back into its sequence at its own time, {_when(item.scheduled_at)}."
        return True, "Never sent; its time has passed. Goes out within minutes."
    if item.status == QueueStatus.UNCONFIRMED:
        key = item.batch.provider_idempotency_key if item.batch_id else item.idempotency_key
        provider = transport_class().display_name
        return True, (
            f"Outcome unknown: {provider} may have delivered it. Check {provider}'s log for Idempotency-Key {key} "
            "first. "
            "A new copy goes out within minutes under a new key: if the first one did arrive, the customer gets it "
            "twice."
        )
    sent = _when(item.sent_at or item.scheduled_at)
    return True, f"Sent {sent}. A new copy goes out within minutes, under a new key."


class ResendActionsMixin:
    """Mixed into EmailQueueItemAdmin (automations/admin/queue.py)."""

    resend_actions = ("resend_after_review", "send_now")

    @admin.action(description="Resend selected emails (cancelled ones at their own time)…", permissions=["retry"])
    def resend_after_review(self, request, queryset):
        return self._confirm_resend(request, queryset, send_now=False)

    @admin.action(description="Send selected emails now, even ahead of their time…", permissions=["retry"])
    def send_now(self, request, queryset):
        return self._confirm_resend(request, queryset, send_now=True)

    def _confirm_resend(self, request, queryset, *, send_now: bool):
        items = list(
            queryset.select_related("customer", "enrollment", "step__template", "batch").order_by("scheduled_at", "pk")
        )
        now = timezone.now()
        plan = [(item, *what_will_happen(item, send_now=send_now, now=now)) for item in items]
        form = ConfirmResendForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            return self._resend(request, plan, send_now=send_now, **form.cleaned_data)
        if not form.is_bound:
            form = ConfirmResendForm(initial={"request_key": uuid.uuid4()})
        context = {
            **self.admin_site.each_context(request),
            "title": "Send these emails now?" if send_now else "Resend these emails?",
            "opts": self.model._meta,
            "plan": plan,
            "form": form,
            "send_now": send_now,
            "action": "send_now" if send_now else "resend_after_review",
            "resendable_count": sum(1 for _, will, _ in plan if will),
        }
        return TemplateResponse(request, "admin/automations/emailqueueitem/resend_confirmation.html", context)

    def _resend(self, request, plan, *, send_now: bool, reason: str, request_key) -> None:
        from customers.staff_actions import ActionRefused, action_run  # registered by backoffice at start

        done, refused = 0, []
        for item, will, _ in plan:
            if not will:
                continue
            try:
                action_run(
                    name="email_resend",
                    actor=request.user,
                    customer=item.customer,
                    data={"reason": reason, "item_id": item.pk, "request_key": request_key, "send_now": send_now},
                )
                done += 1
            except ActionRefused as exc:
                refused.append(f"{item.recipient} ({item.step.template.name}): {exc}")
        if done:
            self.message_user(request, f"{done} email(s) queued again as listed.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, f"Not resent: {line}", messages.WARNING)
        skipped = sum(1 for _, will, _ in plan if not will)
        if skipped:
            self.message_user(request, f"{skipped} selected email(s) were left as they were.", messages.WARNING)


__all__ = ["ResendActionsMixin", "what_will_happen"]
