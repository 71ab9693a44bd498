"""The ticket page's "who the customer is" and staff linking a Discord account by hand (audited).

A ticket whose Discord user has no proven link shows staff "unverified: typed email x", the customer that email
belongs to (if any) and where the emailed confirmation stands. Staff who have checked who the person is can link the
Discord account to a customer here: a staff action of backoffice/staff_actions.py ("Linked a Discord account", with a
reason), so the customer's staff actions and timeline keep who did it, when and why.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from customers import staff_actions
from customers.models import Customer, StaffActionKind

from .identity import link_request_state
from .models import DiscordLinkRequest, Ticket

REQUEST_WORDS = {
    "confirm": "waiting for the customer",
    "confirmed": "confirmed by the customer",
    "declined": "the customer said it was not them",
    "expired": "expired without an answer",
}


def _customer_link(customer: Customer) -> str:
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:customers_customer_change", args=[customer.pk]), str(customer)
    )


def identity_html(ticket: Ticket) -> str:
    if ticket.pk is None:
        return "—"
    if ticket.customer_id and ticket.customer.discord_user_id == ticket.discord_user_id:
        return format_html("{} (Discord account linked by proof)", _customer_link(ticket.customer))
    link_by_hand = format_html(
        ' <a class="button" href="{}">Link this Discord account by hand…</a>',
        reverse("admin:support_ticket_link_discord", args=[ticket.pk]),
    )
    if not ticket.contact_email:
        return format_html("Not linked: no email was given in the form.{}", link_by_hand)
    owner = Customer.objects.filter(email__iexact=ticket.contact_email).first()
    if owner is None:
        return format_html(
            "Unverified: typed email {}. No customer has this email.{}", ticket.contact_email, link_by_hand
        )
    request = (
        DiscordLinkRequest.objects.filter(customer=owner, discord_user_id=ticket.discord_user_id)
        .order_by("-created_at")
        .first()
    )
    if request is None:
        asked = "No confirmation email was sent (too many today for this customer)."
    elif request.send_error and not request.sent_at:
        asked = f"The confirmation email was {request.send_error}."
    else:
        when = timezone.localtime(request.sent_at or request.created_at)
        asked = f"Confirmation link emailed {when:%Y-%m-%d %H:%M}: {REQUEST_WORDS[link_request_state(request)]}."
    return format_html(
        "Unverified: typed email {}, which is the email of {}. Nothing from their account is shown in Discord until "
        "the link is proven. {}{}",
        ticket.contact_email,
        _customer_link(owner),
        asked,
        link_by_hand,
    )


class LinkByHandForm(forms.Form):
    customer_email = forms.EmailField(label="Customer's email")
    reason = forms.CharField(
        max_length=500,
        label="How you checked it is them",
        help_text="Recorded with your name on the customer's staff actions and timeline.",
    )

    def clean_customer_email(self):
        customer = Customer.objects.filter(email__iexact=self.cleaned_data["customer_email"].strip()).first()
        if customer is None:
            raise forms.ValidationError("No customer has this email.")
        return customer


def link_view(model_admin, request, ticket_id: int):
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    if ticket is None:
        raise Http404("No such ticket")
    if not model_admin.has_view_permission(request, ticket) or not staff_actions.may(
        request.user, StaffActionKind.DISCORD_LINK
    ):
        raise PermissionDenied
    back = reverse("admin:support_ticket_change", args=[ticket.pk])
    form = LinkByHandForm(request.POST or None, initial={"customer_email": ticket.contact_email})
    if request.method == "POST" and form.is_valid():
        customer = form.cleaned_data["customer_email"]
        try:
            done = staff_actions.action_run(
                name=StaffActionKind.DISCORD_LINK,
                actor=request.user,
                customer=customer,
                data={"reason": form.cleaned_data["reason"], "discord_user_id": ticket.discord_user_id},
            )
        except staff_actions.ActionRefused as exc:
            messages.error(request, f"Nothing done: {exc}")
        else:
            messages.success(request, f"Done: {done.message}. Recorded in the customer's staff actions.")
        return redirect(back)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": ticket,
        "title": f"Link Discord user {ticket.discord_username or ticket.discord_user_id} to a customer",
        "ticket": ticket,
        "form": form,
        "back": back,
    }
    return TemplateResponse(request, "admin/support/ticket/link_discord.html", context)
