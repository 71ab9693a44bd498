"""A reissued Discord invite: the old link stops working at Discord once the new one is stored, and a failed revoke
is retried without ever holding back the new invite."""

import pytest

from devtools.fakes.server import FakeResponse
from integrations.models import DiscordInvite, InviteState, RunStatus, WorkflowRun
from integrations.runs import run_execute
from integrations.tasks import discord_invites_revoke_task

pytestmark = pytest.mark.django_db


def _code(link: str) -> str:
    return link.rsplit("/", 1)[1]


def _issue_then_reissue(fakes, deliver_mautic, contact_id: str) -> tuple[str, str]:
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    first = fakes.mautic.contact(contact_id)["discord_invite_link_basic"]
    fakes.mautic.update_contact(contact_id, discord_invite_link_basic="")  # staff clear the leaked link in Mautic
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    return first, fakes.mautic.contact(contact_id)["discord_invite_link_basic"]


def test_a_reissued_invite_revokes_the_old_link_at_discord(fakes, deliver_mautic):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)

    first, second = _issue_then_reissue(fakes, deliver_mautic, contact_id)

    assert second and second != first
    assert fakes.discord.accept_invite(_code(first)) is False  # the leaked link no longer lets anyone in
    assert fakes.discord.accept_invite(_code(second)) is True
    assert [r.path for r in fakes.discord.requests_to("DELETE", r"/api/v10/invites/.+")] == [
        f"/api/v10/invites/{_code(first)}"
    ]
    old = DiscordInvite.objects.get(code=_code(first))
    assert old.state == InviteState.SUPERSEDED and old.revoked_at is not None and old.revoke_error == ""
    assert DiscordInvite.objects.get(code=_code(second)).revoked_at is None
    assert len(fakes.mautic.sent_emails) == 2
    run = WorkflowRun.objects.order_by("-id").first()
    assert run.steps.get(name="discord.invite_revoke").outcome == "ok"


def test_the_old_invite_is_revoked_only_after_the_new_one_is_stored(fakes, deliver_mautic):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    first = fakes.mautic.contact(contact_id)["discord_invite_link_basic"]
    fakes.mautic.update_contact(contact_id, discord_invite_link_basic="")
    original = fakes.mautic._handle

    def fail_patch(request):  # the re-read works; writing the new link to Mautic fails (503) for now
        if request.method == "PATCH":
            return FakeResponse(503, fakes.mautic.error_body(503))
        return original(request)

    fakes.mautic._handle = fail_patch
    try:
        deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    finally:
        fakes.mautic._handle = original

    run = WorkflowRun.objects.order_by("-id").first()
    assert run.status == RunStatus.FAILED and "contacts.edit" in run.last_error
    assert DiscordInvite.objects.get(code=_code(first)).state == InviteState.SUPERSEDED  # the new one is made...
    assert len(fakes.discord.invites) == 2  # ... but not stored on the contact yet
    assert fakes.discord.requests_to("DELETE", r"/api/v10/invites/.+") == []
    assert discord_invites_revoke_task() == {"revoked": 0, "failed": 0}
    assert fakes.discord.invite_works(_code(first)) is True  # the contact is never left without a working link

    assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED  # the retry stores the new link, then revokes
    assert fakes.discord.invite_works(_code(first)) is False


def test_a_failed_revoke_never_blocks_the_new_invite_and_is_retried(fakes, deliver_mautic, admin_client):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    first = fakes.mautic.contact(contact_id)["discord_invite_link_basic"]
    fakes.mautic.update_contact(contact_id, discord_invite_link_basic="")
    fakes.discord.fail_invite_deletes(times=20)  # Discord answers 500 to every delete for now

    deliver_mautic(fakes.mautic.webhook_body([contact_id]))

    second = fakes.mautic.contact(contact_id)["discord_invite_link_basic"]
    assert second and second != first
    assert len(fakes.mautic.sent_emails) == 2  # the new invite went out all the same
    run = WorkflowRun.objects.order_by("-id").first()
    assert run.status == RunStatus.SUCCEEDED
    step = run.steps.get(name="discord.invite_revoke")
    assert step.outcome == "failed" and "500" in step.error
    old = DiscordInvite.objects.get(code=_code(first))
    assert old.revoked_at is None and "500" in old.revoke_error
    assert fakes.discord.invite_works(_code(second)) is True

    fakes.discord.fail_invite_deletes(times=0)  # Discord is back: the 5-minute schedule revokes it
    assert discord_invites_revoke_task() == {"revoked": 1, "failed": 0}
    assert fakes.discord.invite_works(_code(first)) is False
    old.refresh_from_db()
    assert old.revoked_at is not None and old.revoke_error == ""
    assert discord_invites_revoke_task() == {"revoked": 0, "failed": 0}  # nothing twice


def test_an_old_invite_already_gone_at_discord_counts_as_revoked(fakes, deliver_mautic):
    contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
    deliver_mautic(fakes.mautic.webhook_body([contact_id]))
    first = fakes.mautic.contact(contact_id)["discord_invite_link_basic"]
    fakes.discord.invites.pop(_code(first))  # expired, or deleted by staff in Discord's server settings
    fakes.mautic.update_contact(contact_id, discord_invite_link_basic="")

    deliver_mautic(fakes.mautic.webhook_body([contact_id]))

    assert DiscordInvite.objects.get(code=_code(first)).revoked_at is not None
    assert WorkflowRun.objects.order_by("-id").first().steps.get(name="discord.invite_revoke").outcome == "ok"
