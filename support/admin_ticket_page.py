"""The ticket page in the admin, where Support works a ticket: the conversation (support/ticket_page.py), the reply
and internal-note form, the buttons (claim, unclaim, transfer, close with a reason, close request, reopen) and the
customer's CRM card, above the ticket's details.

Every button is a POST form to `<ticket id>/act/<action>/` (CSRF-checked by the admin's view wrapper), allowed to
staff with the change permission on tickets (the Support role), and goes through support/workspace.py or
support/close_requests.py. Input that is not what the page sends answers 400 and changes nothing; a button that no
longer applies (the ticket closed meanwhile) changes nothing and says why.
"""

import uuid

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import escape

from . import close_requests, selectors, ticket_billing_actions, ticket_page, ticket_page_replies, workspace
from .models import TicketStatus
from .ticket_page_replies import saved_reply_page_context
from .workspace_models import PostKind


def support_staff():
    """Who may hold a ticket: active staff allowed to work tickets (superusers, or the change permission on tickets
    through a role or given directly)."""
    via_group = Q(groups__permissions__codename="change_ticket", groups__permissions__content_type__app_label="support")
    direct = Q(user_permissions__codename="change_ticket", user_permissions__content_type__app_label="support")
    users = get_user_model().objects.filter(is_active=True, is_staff=True)
    return users.filter(Q(is_superuser=True) | via_group | direct).distinct().order_by("username")


class PostForm(forms.Form):
    content = forms.CharField(max_length=workspace.REPLY_MAX_CHARS, widget=forms.Textarea(attrs={"rows": 4}))
    kind = forms.ChoiceField(choices=PostKind.choices)
    # One token per rendering of the form: a double click or a resubmit carries the same one (support/workspace.py).
    token = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput)
    # The saved reply that filled the box, if any: a reply sent from it counts as a use of that saved reply.
    saved_reply = forms.IntegerField(required=False, widget=forms.HiddenInput)


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False)


class CloseForm(forms.Form):
    reason = forms.CharField(max_length=500)


class TransferForm(forms.Form):
    to = forms.ModelChoiceField(queryset=support_staff(), label="Transfer to")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to"].queryset = support_staff()  # evaluated per request: staff come and go


ACTIONS = {"post", "claim", "unclaim", "transfer", "close", "close_request", "reopen", *ticket_billing_actions.ACTIONS}


class TicketPageMixin:
    """Mixed into support.admin.TicketAdmin."""

    change_form_template = "admin/support/ticket/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        ticket = selectors.ticket_get(ticket_id=int(object_id)) if str(object_id).isdigit() else None
        if ticket is not None and self.has_view_permission(request, ticket):
            extra_context = {**(extra_context or {}), **self.workspace_context(request, ticket)}
        return super().change_view(request, object_id, form_url, extra_context)

    def workspace_context(self, request, ticket) -> dict:
        may_work = self.has_change_permission(request, ticket)
        return {
            "ticket": ticket,
            "conversation": ticket_page.conversation_for_page(ticket, refresh=bool(request.GET.get("refresh"))),
            "card": ticket_page.customer_card(ticket),
            "audit": ticket_page.audit_entries(ticket),
            "close_request": ticket_page.close_request_pending(ticket),
            "transcript_delivery": ticket_page.transcript_delivery(ticket),
            "may_work": may_work,
            "is_open": ticket.status == TicketStatus.OPEN,
            "is_closed": ticket.status in (TicketStatus.CLOSED, TicketStatus.NOT_OPENED),
            "post_form": PostForm(initial={"token": uuid.uuid4().hex, "kind": PostKind.REPLY}),
            "transfer_form": TransferForm() if may_work else None,
            "post_max": workspace.REPLY_MAX_CHARS,
            "cache_seconds": settings.DISCORD_CONVERSATION_CACHE_SECONDS,
            **saved_reply_page_context(ticket=ticket, chosen=request.GET.get("saved_reply", "")),
            **(ticket_billing_actions.billing_actions_context(ticket=ticket) if may_work else {"billing_forms": None}),
        }

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:ticket_id>/act/<str:action>/", view(self.ticket_action_view), name="support_ticket_act"),
            *super().get_urls(),
        ]

    def ticket_action_view(self, request, ticket_id: int, action: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if action not in ACTIONS:
            raise Http404("No such action")
        ticket = selectors.ticket_get(ticket_id=ticket_id)
        if ticket is None:
            raise Http404("No such ticket")
        if not self.has_change_permission(request, ticket):
            raise PermissionDenied
        back = reverse("admin:support_ticket_change", args=[ticket.pk])
        try:
            done = self._act(request, ticket, action)
        except _BadInput as exc:
            return HttpResponse(
                f'<p>Nothing was done: {escape(str(exc))}</p><p><a href="{back}">Back to the ticket</a></p>', status=400
            )
        except workspace.ActionRefused as exc:
            messages.error(request, f"Nothing was done: {exc}")
            return redirect(back)
        messages.success(request, done)
        return redirect(back)

    def _act(self, request, ticket, action: str) -> str:
        user = request.user
        if action in ticket_billing_actions.ACTIONS:
            data = _valid(ticket_billing_actions.FORMS[action](request.POST))
            return ticket_billing_actions.billing_action_run(ticket=ticket, actor=user, action=action, data=data)
        if action == "post":
            form = _valid(PostForm(request.POST))
            post, created = workspace.ticket_post_create(
                ticket=ticket,
                author=user,
                kind=form["kind"],
                content=form["content"],
                form_token=form["token"],
            )
            if not created:
                return "Already posted (the form was sent twice); nothing was sent again."
            if post.kind == PostKind.REPLY and form["saved_reply"]:
                ticket_page_replies.saved_reply_use_from_page(
                    ticket=ticket, post=post, saved_reply_id=form["saved_reply"]
                )
            if post.kind == PostKind.NOTE:
                return "Internal note added. It stays in the admin and is never sent to Discord."
            return "Reply on its way to the customer's channel, under your name."
        if action == "claim":
            workspace.ticket_claim_by_staff(ticket=ticket, actor=user)
            return f"You claimed ticket #{ticket.pk}."
        if action == "unclaim":
            workspace.ticket_unclaim_by_staff(ticket=ticket, actor=user)
            return f"Ticket #{ticket.pk} is unclaimed."
        if action == "transfer":
            target = _valid(TransferForm(request.POST))["to"]
            workspace.ticket_claim_by_staff(ticket=ticket, actor=user, to=target)
            return f"Ticket #{ticket.pk} transferred to {workspace.staff_name(target)}."
        if action == "close":
            reason = _valid(CloseForm(request.POST))["reason"]
            workspace.ticket_close_by_staff(ticket=ticket, actor=user, reason=reason)
            return f"Ticket #{ticket.pk} is closing: the transcript is saved, then the channel is deleted."
        if action == "close_request":
            reason = _valid(ReasonForm(request.POST))["reason"]
            request_row = close_requests.close_request_create(ticket=ticket, actor=user, reason=reason)
            return (
                "The customer is asked in the channel to confirm the close; without an answer the ticket closes "
                f"{request_row.due_at:%Y-%m-%d %H:%M} UTC."
            )
        workspace.ticket_reopen_by_staff(ticket=ticket, actor=user)
        return f"Ticket #{ticket.pk} is reopening in a new channel."


class _BadInput(Exception):
    pass


def _valid(form: forms.Form) -> dict:
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
        raise _BadInput(problems)
    return form.cleaned_data
