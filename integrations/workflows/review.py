"""Staff's answer to a run stopped in `needs_review` because an email send's outcome is unknown (emails.py).

Staff check the contact's email history in Mautic, then tell us what they found:
- `sent=True`: the email went out. It is recorded as emailed, and the stopped runs go on (a contact invite run then
  ensures the EspoCRM lead; a coupon run updates the Customer).
- `sent=False`: it did not. The mark is cleared and the stopped runs are retried, which send it once.
"""

from django.db import transaction
from django.utils import timezone

from integrations.models import DiscordInvite, InviteState, PromoCode, RunKind, RunStatus, WorkflowRun
from integrations.runs import workflow_run_retry


def invite_email_resolve(*, invite_ids: list[int], sent: bool) -> int:
    """Returns how many invites were waiting for this answer."""
    with transaction.atomic():
        invites = list(
            DiscordInvite.objects.select_for_update()
            .filter(pk__in=invite_ids, state=InviteState.STORED, email_requested_at__isnull=False)
            .select_related("contact")
        )
        for invite in invites:
            if sent:
                invite.state, invite.emailed_at = InviteState.EMAILED, timezone.now()
            else:
                invite.email_requested_at = None
            invite.save(update_fields=["state", "emailed_at", "email_requested_at"])
        subjects = [f"mautic-contact:{invite.contact.contact_id}" for invite in invites]
        run_ids = WorkflowRun.objects.filter(
            kind=RunKind.CONTACT_INVITE, status=RunStatus.NEEDS_REVIEW, subject__in=subjects
        ).values_list("pk", flat=True)
        workflow_run_retry(run_ids=list(run_ids))
    return len(invites)


def coupon_email_resolve(*, promo_ids: list[int], sent: bool) -> int:
    """Returns how many promo codes were waiting for this answer."""
    with transaction.atomic():
        promos = list(
            PromoCode.objects.select_for_update().filter(
                pk__in=promo_ids, emailed_at__isnull=True, email_requested_at__isnull=False
            )
        )
        for promo in promos:
            if sent:
                promo.emailed_at = timezone.now()
            else:
                promo.email_requested_at = None
            promo.save(update_fields=["emailed_at", "email_requested_at"])
        keys = [f"checkout-session:{promo.checkout_session_id}:vip-coupon" for promo in promos]
        run_ids = WorkflowRun.objects.filter(
            kind=RunKind.VIP_COUPON, status=RunStatus.NEEDS_REVIEW, key__in=keys
        ).values_list("pk", flat=True)
        workflow_run_retry(run_ids=list(run_ids))
    return len(promos)
