"""A workflow run whose worker was killed is resumed within a minute: it holds a lease renewed while it works, and
the every-minute sweep takes a run whose lease ran out. The kill is simulated as SIGKILL leaves it: the run claimed
(status running, lease set) and nothing after that. The clock is moved, never slept."""

from datetime import timedelta

import pytest

from devtools.clock import as_of
from integrations import runs
from integrations.models import RunStatus, WorkflowRun
from tests.integrations.factories import WorkflowRunFactory
from tests.scheduler import next_even_minute, run_schedules

pytestmark = pytest.mark.django_db


@pytest.fixture
def killed_run(fakes, deliver_mautic, monkeypatch):
    """A Mautic webhook whose run a worker claimed, then the worker was killed (at `killed_run.at`)."""

    def make():
        contact_id = fakes.mautic.add_contact(email="ada@example.com", opt_in_confirmed=True)
        killed_at = next_even_minute() + timedelta(seconds=5)
        with as_of(killed_at):
            with monkeypatch.context() as patch:
                patch.setattr(runs, "workflow_run_enqueue", lambda run_id: None)  # its task went to the killed worker
                deliver_mautic(fakes.mautic.webhook_body([contact_id]))
            run = WorkflowRun.objects.get()
            assert runs._claim(run.pk) is not None  # the worker took it ... and was killed here
        return run, contact_id, killed_at

    return make


def test_a_run_killed_mid_work_is_resumed_by_the_sweep_within_a_minute(fakes, killed_run):
    run, contact_id, killed_at = killed_run()
    assert WorkflowRun.objects.get().status == RunStatus.RUNNING and fakes.discord.invites == {}

    ran = run_schedules(app="integrations", after=killed_at, until=killed_at + timedelta(seconds=60))

    assert ran  # the every-minute sweep ran once in that minute
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.attempts == 2
    assert fakes.mautic.contact(contact_id)["discord_invite_link_basic"].startswith("https://discord.gg/")
    assert len(fakes.discord.invites) == 1 and fakes.mautic.sent_emails == [("12", contact_id)]


def test_a_run_that_keeps_renewing_its_lease_is_left_to_its_worker(fakes, killed_run, settings):
    run, _, claimed_at = killed_run()
    run.refresh_from_db()
    lease = timedelta(seconds=settings.INTEGRATIONS_RUN_LEASE_SECONDS)
    assert run.lease_expires_at == pytest.approx(claimed_at + lease, abs=timedelta(seconds=2))

    # Alive: its lease is renewed while it works (here by hand, as the renewal thread would), so no sweep takes it.
    moment = claimed_at
    for _ in range(3):
        moment += lease * 0.6
        with as_of(moment):
            assert runs._lease_renew(run.pk, run.attempts)
            assert run.pk not in runs.workflow_runs_due()
    assert WorkflowRun.objects.get().attempts == 1 and fakes.discord.invites == {}

    # Then its worker dies: one lease later the sweep takes it.
    with as_of(moment + lease + timedelta(seconds=1)):
        assert run.pk in runs.workflow_runs_due()


def test_the_lease_is_renewed_while_a_run_works(settings, monkeypatch):
    """The renewal thread renews a slow run's lease while the run still works (a short lease here; the run's "long
    call" ends as soon as a renewal has happened, at most 5 s)."""
    import threading

    settings.INTEGRATIONS_RUN_LEASE_SECONDS = 0.3
    renewed = threading.Event()
    renewals = []

    def renew(run_id, attempts):  # the UPDATE itself is covered above; here, that the thread calls it
        renewals.append((run_id, attempts, renewed.is_set()))
        renewed.set()
        return True

    def slow_workflow(recorder):
        renewed.wait(5)
        return "done"

    monkeypatch.setattr(runs, "_lease_renew", renew)
    monkeypatch.setitem(runs._workflows, "contact_invite", slow_workflow)
    run = WorkflowRunFactory(kind="contact_invite", key="test:slow", subject="slow", input={})  # queued

    assert runs.run_execute(run_id=run.pk) == RunStatus.SUCCEEDED
    assert renewals[0] == (run.pk, 1, False)  # renewed while the workflow was still waiting
    run.refresh_from_db()
    assert run.lease_expires_at is None  # a finished run holds no lease
