"""One Discord invite per contact and tier, even when Discord's answer is lost.

`POST /channels/{id}/invites` has no idempotency key: a timeout, a dropped connection or a gateway's 5xx may hide an
invite Discord did make. So the request leaves a trace first:

1. A `DiscordInvite` row in state `requesting` (no code yet) is committed before the POST. The workflow runs in
   autocommit under the contact's lock (contact_invite.py), so the row survives whatever happens next.
2. After the POST answers, the row gets the code and url and becomes `created`.
3. A later attempt that finds a `requesting` row first lists the channel's invites (`GET /channels/{id}/invites`)
   and adopts the one the lost POST made: not already ours, `max_uses` 1, in the row's channel, made by a bot, created
   no earlier than the row (less CLOCK_SKEW, Discord's clock is not ours), and with the tier's roles when the listing
   shows roles. The oldest match wins. Only when none matches does it create.
4. A definite refusal (a 4xx: the 1,000-invite guild limit, missing permissions) means nothing was made: the row is
   deleted and the error raised, so the next attempt starts clean.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from integrations.discord.client import DiscordClient, DiscordError
from integrations.discord.invites import invite_client, invite_url
from integrations.models import DiscordInvite, InviteState, InviteTier, MauticContact
from integrations.runs import StepRecorder

CLOCK_SKEW = timedelta(minutes=2)


def tier_role_ids(tier: str) -> list[str]:
    role = settings.DISCORD_INVITE_ROLE_ID_VIP if tier == InviteTier.VIP else settings.DISCORD_INVITE_ROLE_ID_BASIC
    return [role] if role else []


def invite_ensure(
    recorder: StepRecorder, row: MauticContact, tier: str, placeholder: DiscordInvite | None
) -> DiscordInvite:
    """The contact's `created` invite for the tier; `placeholder` is its `requesting` row from an earlier attempt."""
    discord = invite_client()
    role_ids = tier_role_ids(tier)
    if placeholder is not None:
        with recorder.step("discord.invite_check", detail=f"{tier} invite requested earlier") as note:
            found = lost_invite_find(discord, placeholder, role_ids)
            note.detail = (
                f"adopted {invite_url(found)}, made by the earlier request"
                if found
                else "the earlier request made no invite; creating one"
            )
        if found is not None:
            return _fill(placeholder, found)
        placeholder.channel_id = settings.DISCORD_INVITE_CHANNEL_ID
        placeholder.save(update_fields=["channel_id"])
    else:
        placeholder = DiscordInvite.objects.create(
            contact=row,
            tier=tier,
            state=InviteState.REQUESTING,
            channel_id=settings.DISCORD_INVITE_CHANNEL_ID,
            run=recorder.run,
        )
    with recorder.step("discord.invite", detail=f"{tier} invite") as note:
        try:
            made = discord.invite_create(
                channel_id=placeholder.channel_id, max_age=settings.DISCORD_INVITE_MAX_AGE, role_ids=role_ids or None
            )
        except DiscordError as exc:
            if 400 <= exc.status < 500 and exc.status != 429:
                placeholder.delete()  # Discord refused: nothing was made, nothing to look for next time
            raise
        note.detail = f"{tier} invite {invite_url(made)}"
    return _fill(placeholder, made)


def lost_invite_find(discord: DiscordClient, placeholder: DiscordInvite, role_ids: list[str]) -> dict | None:
    listing = [i for i in discord.channel_invites(channel_id=placeholder.channel_id) if i.get("code")]
    known = set(DiscordInvite.objects.filter(code__in=[i["code"] for i in listing]).values_list("code", flat=True))
    since = placeholder.created_at - CLOCK_SKEW
    matches = []
    for invite in listing:
        created = _created_at(invite)
        if invite["code"] in known or created is None or created < since:
            continue
        if invite.get("max_uses") != 1 or str((invite.get("channel") or {}).get("id")) != placeholder.channel_id:
            continue
        if not _made_by_a_bot(invite) or not _roles_match(invite, role_ids):
            continue
        matches.append((created, invite))
    return min(matches, key=lambda m: m[0])[1] if matches else None


def _fill(placeholder: DiscordInvite, invite: dict) -> DiscordInvite:
    placeholder.code = invite["code"]
    placeholder.url = invite_url(invite)
    placeholder.state = InviteState.CREATED
    try:
        with transaction.atomic():
            placeholder.save(update_fields=["code", "url", "state"])
    except IntegrityError as exc:  # another contact's retry adopted the same invite a moment ago
        message = f"invite {invite['code']} was taken by another contact meanwhile; the next attempt looks again"
        raise DiscordError(status=409, body=message, message=message, call="invites.adopt") from exc
    return placeholder


def _created_at(invite: dict) -> datetime | None:
    try:
        created = datetime.fromisoformat(str(invite.get("created_at")))
    except ValueError:
        return None
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def _made_by_a_bot(invite: dict) -> bool:
    inviter = invite.get("inviter")
    if not inviter:
        return True  # Discord leaves it out for some invites; the other checks still apply
    return inviter.get("bot") is True or str(inviter.get("id")) == str(settings.DISCORD_APPLICATION_ID)


def _roles_match(invite: dict, role_ids: list[str]) -> bool:
    if "role_ids" in invite:
        listed = {str(r) for r in invite.get("role_ids") or []}
    elif "roles" in invite:
        listed = {str(r.get("id") if isinstance(r, dict) else r) for r in invite.get("roles") or []}
    else:
        return True  # the listing does not show roles
    return listed == set(role_ids)
