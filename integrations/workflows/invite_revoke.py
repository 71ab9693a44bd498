"""Revoke the invites a reissue replaced, so a leaked or forwarded link stops working.

Staff reissue an invite by clearing the contact's link field in Mautic (contact_invite.py): the old invite is marked
superseded and a new one is made and written to Mautic. Discord keeps the old invite valid until it expires (7 days
with the default DISCORD_INVITE_MAX_AGE) unless it is deleted (`DELETE /invites/{code}`). So once the new invite is
stored on the contact, the run deletes every superseded invite of that contact and tier that is not revoked yet. The
contact is never left without a working link: an old invite is revoked only after its successor is stored.

A failed delete (Discord down, missing permission) never blocks the new invite: the run records the step as failed
with the error, keeps it on the invite row (`revoke_error`, shown in the admin), and goes on to send the email. The
`integrations.discord-invites-revoke` schedule (every 5 minutes) tries again until Discord deletes it or answers
Unknown Invite (already expired or used: just as revoked).
"""

import logging

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from integrations.discord.client import DiscordClient, DiscordError
from integrations.discord.invites import invite_client
from integrations.models import DiscordInvite, InviteState, StepOutcome
from integrations.runs import StepRecorder

logger = logging.getLogger(__name__)


def invites_to_revoke() -> QuerySet[DiscordInvite]:
    """Superseded invites with a code, not revoked yet, whose contact has a later invite of the tier stored."""
    successor_stored = DiscordInvite.objects.filter(
        contact=OuterRef("contact"), tier=OuterRef("tier"), created_at__gt=OuterRef("created_at")
    ).exclude(stored_at=None)
    return (
        DiscordInvite.objects.filter(state=InviteState.SUPERSEDED, revoked_at=None)
        .exclude(code=None)
        .filter(Exists(successor_stored))
        .order_by("created_at", "id")
    )


def invite_revoke(discord: DiscordClient, invite: DiscordInvite) -> None:
    """Delete one invite at Discord and record it. Raises DiscordError (recorded on the row first)."""
    try:
        discord.invite_delete(code=invite.code)
    except DiscordError as exc:
        DiscordInvite.objects.filter(pk=invite.pk).update(revoke_error=str(exc)[:500])
        raise
    DiscordInvite.objects.filter(pk=invite.pk).update(revoked_at=timezone.now(), revoke_error="")


def replaced_invites_revoke(recorder: StepRecorder, current: DiscordInvite) -> None:
    """In the run, right after `current` is stored on the contact: revoke the invites it replaced. Never raises a
    Discord error (the schedule retries what fails)."""
    replaced = list(invites_to_revoke().filter(contact_id=current.contact_id, tier=current.tier))
    if not replaced:
        return
    discord = invite_client()
    started = timezone.now()
    revoked, failed = [], []
    for invite in replaced:
        try:
            invite_revoke(discord, invite)
            revoked.append(invite.code)
        except DiscordError as exc:
            failed.append((invite.code, exc))
            if exc.is_auth_failure:
                break  # the same token or permission fails for the rest
    if failed:
        codes = ", ".join(code for code, _ in failed)
        recorder.record(
            "discord.invite_revoke",
            StepOutcome.FAILED,
            f"old invite {codes} still works at Discord; retried every 5 minutes",
            started,
            error=str(failed[0][1]),
        )
    else:
        recorder.record("discord.invite_revoke", StepOutcome.OK, f"revoked old invite {', '.join(revoked)}", started)


def invites_revoke_pending(*, limit: int = 200) -> dict:
    """The schedule: revoke what earlier runs could not. Stops at a 401/403, which every other call would get too."""
    pending = list(invites_to_revoke()[:limit])
    if not pending:
        return {"revoked": 0, "failed": 0}
    discord = invite_client()
    revoked = failed = 0
    for invite in pending:
        try:
            invite_revoke(discord, invite)
            revoked += 1
        except DiscordError as exc:
            failed += 1
            logger.warning("Could not revoke Discord invite %s: %s", invite.pk, exc)
            if exc.is_auth_failure:
                break
    return {"revoked": revoked, "failed": failed}
