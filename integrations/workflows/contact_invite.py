"""Workflow 1: Mautic contact updated -> Discord invite -> Mautic (write, read back) -> invite email -> EspoCRM lead.

From the seed's n8n workflow, with guarantees instead of random waits:
- One task per contact event (a delivery may hold several). The webhook's fields decide whether there is anything
  to do; `opt_in_confirmed` gates everything.
- VIP (`vip_status`) gets the VIP invite, everyone else the Basic one. A contact who becomes VIP after receiving the
  Basic invite gets the VIP invite too (its link field is empty): VIP is a different role and the seed promises VIPs
  their invite; the Basic link stays where it is.
- With the link field empty: take the contact's lock (a PostgreSQL advisory lock on its `MauticContact` row, held
  across transactions), re-read the contact from Mautic, and only if the field is still empty create the invite.
  Under the lock the steps run in autocommit, so each fact is committed as soon as it is known and survives whatever
  fails later: the invite request before the POST (invites.py: a lost answer is found again, not made twice), the
  invite before it is written to Mautic (a retry after a failed write reuses it), the email request before the send
  (emails.py: a send whose answer was lost is not repeated). Two webhooks for the same contact at the same moment:
  the second waits for the lock, re-reads, finds the link.
- Our own write of the link makes Mautic send another update webhook: its link field holds our current invite, which
  is already emailed, so the run ends before any outside call (a quiet no-op).
- A field cleared in Mautic while our invite is stored there means "reissue" (the seed's procedure): the old invite
  is marked superseded and a new one is made; once the new one is stored, the old one is deleted at Discord
  (invite_revoke.py), so a leaked link stops working.
- The contact's marketing fields are mirrored onto the CRM Customer on every event, newest state only (a retry
  re-reads the contact, an older copy is not applied, a deleted contact ends the run as skipped: mautic_state.py).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from customers import services as customer_services
from integrations.espocrm.client import EspoCrmClient
from integrations.mautic.client import MauticClient, MauticError, field_is_true
from integrations.mautic.webhook import PROVIDER, ContactEvent, contacts_in, parse_delivery
from integrations.models import DiscordInvite, InboundWebhook, InviteState, InviteTier, MauticContact, RunKind
from integrations.runs import RunSkipped, StepRecorder, workflow, workflow_run_create
from integrations.webhooks.store import webhook_processor

from .emails import email_send_once
from .invite_revoke import replaced_invites_revoke
from .invites import invite_ensure
from .mautic_state import contact_gone_is_skip, contact_state_apply, email_or_blank, step_unless_gone

logger = logging.getLogger(__name__)

LINK_FIELDS = {InviteTier.VIP: "discord_invite_link_vip", InviteTier.BASIC: "discord_invite_link_basic"}
INVITE_EMAILS = {
    InviteTier.VIP: lambda: settings.MAUTIC_EMAIL_INVITE_VIP,
    InviteTier.BASIC: lambda: settings.MAUTIC_EMAIL_INVITE_BASIC,
}


@webhook_processor(PROVIDER)
def mautic_delivery_process(delivery: InboundWebhook) -> None:
    """One run per contact in the delivery. When a delivery names a contact twice, its newest state wins (the later
    event at the same time). The whole delivery is checked before any run is made: a malformed one makes none."""
    latest: dict[str, ContactEvent] = {}
    for event in contacts_in(parse_delivery(bytes(delivery.body))):
        held = latest.get(event.contact_id)
        if held is None or not (held.as_of and event.as_of and event.as_of < held.as_of):
            latest[event.contact_id] = event
    for contact_id, event in latest.items():
        workflow_run_create(
            kind=RunKind.CONTACT_INVITE,
            key=f"mautic-delivery:{delivery.pk}:contact-{contact_id}",
            subject=f"mautic-contact:{contact_id}",
            input={
                "contact_id": contact_id,
                "event": event.event_type,
                "fields": event.fields,
                "as_of": event.as_of.isoformat() if event.as_of else None,
                "refused": event.refused,
                "source": "webhook",
            },
        )


def tier_of(fields: dict) -> str:
    return InviteTier.VIP if field_is_true(fields.get("vip_status")) else InviteTier.BASIC


def current_invite(contact_id: str, tier: str) -> DiscordInvite | None:
    return (
        DiscordInvite.objects.filter(contact__contact_id=contact_id, tier=tier)
        .exclude(state=InviteState.SUPERSEDED)
        .first()
    )


@workflow(RunKind.CONTACT_INVITE)
def contact_invite(recorder: StepRecorder) -> str:
    run = recorder.run
    contact_id = str(run.input["contact_id"])
    fields = contact_state_apply(recorder).fields  # the newest state; never a retried payload
    if not field_is_true(fields.get("opt_in_confirmed")):
        raise RunSkipped("opt_in_confirmed is not true")

    tier = tier_of(fields)
    link = str(fields.get(LINK_FIELDS[tier]) or "").strip()
    if link:
        invite = current_invite(contact_id, tier)
        ours_unfinished = invite is not None and invite.url == link and invite.state != InviteState.EMAILED
        retrying_ours = invite is not None and invite.run_id == run.pk
        if not (ours_unfinished or retrying_ours):
            raise RunSkipped(f"already has its {tier} invite link")

    with contact_gone_is_skip():
        handled = _invite_under_lock(recorder, contact_id)
    if handled is None:
        raise RunSkipped("the contact changed meanwhile; nothing to do")
    invite, contact_email = handled
    lead = _lead_ensure(recorder, email_or_blank(contact_email), fields)
    return f"{invite.tier} invite {invite.code} {invite.state}" + (f", lead {lead}" if lead else "")


def _contact_row(contact_id: str, email: str) -> MauticContact:
    try:
        with transaction.atomic():
            return MauticContact.objects.get_or_create(contact_id=contact_id, defaults={"email": email})[0]
    except IntegrityError:
        return MauticContact.objects.get(contact_id=contact_id)


# pg_advisory_lock(namespace, key): the namespace keeps these locks apart from any other advisory lock.
LOCK_NAMESPACE = 10_010


@contextmanager
def contact_lock(row: MauticContact) -> Iterator[None]:
    """The contact's lock, held across transactions (a row lock would end at the first commit). PostgreSQL only: on
    SQLite (bin/run, a single worker) there is no lock. A worker that dies releases it with its connection."""
    if connection.vendor != "postgresql":
        yield
        return
    key = row.pk % 2**31
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_NAMESPACE, key])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, key])
        except DatabaseError:  # the connection is gone, and the lock with it
            logger.warning("Could not release the lock of Mautic contact %s", row.contact_id, exc_info=True)


def _invite_under_lock(recorder: StepRecorder, contact_id: str) -> tuple[DiscordInvite, str] | None:
    """Everything between re-reading the contact and sending the email, under the contact's lock. Each write commits
    on its own, so what was done before a failure (an invite requested or made, a write confirmed, an email
    requested, the steps recorded) is there for the retry."""
    mautic = MauticClient.from_settings()
    row = _contact_row(contact_id, str(recorder.run.input.get("fields", {}).get("email") or ""))
    with contact_lock(row):
        try:
            return _locked_steps(recorder, mautic, row)
        finally:
            MauticContact.objects.filter(pk=row.pk).update(last_processed_at=timezone.now())


def _locked_steps(recorder: StepRecorder, mautic: MauticClient, row: MauticContact):
    contact_id = row.contact_id
    with step_unless_gone(recorder, "mautic.reread"):
        fresh = mautic.contact_get(contact_id)
    if not fresh.flag("opt_in_confirmed"):
        return None
    tier = tier_of(fresh.fields)
    field = LINK_FIELDS[tier]
    link = fresh.text(field)
    invite = current_invite(contact_id, tier)
    if link:
        if invite is None or invite.url != link:
            return None  # someone else's link (or an old one of ours kept by staff): leave it
        if invite.state == InviteState.CREATED:  # the write went through but we never saw the answer
            _stored(recorder, invite, field)
        if invite.state == InviteState.EMAILED and invite.run_id != recorder.run.pk:
            return None
    else:
        if invite is not None and invite.state not in (InviteState.REQUESTING, InviteState.CREATED):
            _mark(invite, InviteState.SUPERSEDED)  # the field was cleared in Mautic: reissue
            recorder.record("discord.reissue", "ok", f"{field} was cleared in Mautic", timezone.now())
            invite = None
        if invite is None or invite.state == InviteState.REQUESTING:
            invite = invite_ensure(recorder, row, tier, placeholder=invite)
        with recorder.step("mautic.write", detail=field):
            mautic.contact_edit(contact_id, {field: invite.url})
        with recorder.step("mautic.read_back", detail=field):
            stored = mautic.contact_get(contact_id).text(field)
            if stored != invite.url:
                raise MauticError(status=200, body=f"{field} reads {stored!r} after the write", call="read_back")
        _stored(recorder, invite, field)
    if invite.state == InviteState.STORED:
        email_id = INVITE_EMAILS[tier]()
        email_send_once(
            recorder,
            row=invite,
            step="mautic.invite_email",
            detail=f"{tier} invite email {email_id}",
            send=lambda: mautic.email_send(email_id=email_id, contact_id=contact_id),
        )
        _mark(invite, InviteState.EMAILED)
    return invite, fresh.email


def _stored(recorder: StepRecorder, invite: DiscordInvite, field: str) -> None:
    _mark(invite, InviteState.STORED)
    if recorder.run.customer_id:
        customer_services.customer_update(customer=recorder.run.customer, **{field: invite.url})
    replaced_invites_revoke(recorder, invite)  # a reissue: the old link stops working (never raises)


def _mark(invite: DiscordInvite, state: str) -> None:
    now = timezone.now()
    invite.state = state
    update = ["state"]
    if state == InviteState.STORED:
        invite.stored_at = now
        update.append("stored_at")
    elif state == InviteState.EMAILED:
        invite.emailed_at = now
        update.append("emailed_at")
    invite.save(update_fields=update)


def _lead_ensure(recorder: StepRecorder, email: str, fields: dict) -> str:
    """The seed's EspoCRM sync: find the lead by email, create it when missing (a 409 names the existing one)."""
    customer = recorder.run.customer
    if not email or (customer is not None and customer.espocrm_lead_id):
        return customer.espocrm_lead_id if customer is not None else ""
    espocrm = EspoCrmClient.from_settings()
    with recorder.step("espocrm.lead") as note:
        lead_id, created = espocrm.lead_ensure(
            email=email,
            first_name=str(fields.get("firstname") or ""),
            last_name=str(fields.get("lastname") or ""),
            source="Campaign",
            description="Crowdfunding contact from Mautic",
        )
        note.detail = f"{'created' if created else 'found'} lead {lead_id}"
    if customer is not None:
        customer_services.customer_update(customer=customer, espocrm_lead_id=lead_id)
    return lead_id
