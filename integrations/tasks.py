"""django-q2 entry points: each takes ids, calls one function, and is safe to run twice."""

from django.conf import settings

from . import runs
from .webhooks import store as inbound_webhooks


def inbound_webhook_process_task(delivery_id: int) -> bool:
    return inbound_webhooks.inbound_webhook_process(delivery_id=delivery_id)


def inbound_webhooks_retry_task() -> int:
    """Every minute: failed incoming deliveries whose backoff is over (integrations/webhooks/store.py)."""
    return inbound_webhooks.inbound_webhooks_retry_due()


def workflow_run_task(run_id: int) -> str | None:
    return runs.run_execute(run_id=run_id)


def workflow_runs_retry_task() -> int:
    """Every minute: failed runs whose backoff is over, runs lost with their worker, enqueues that never ran."""
    due = runs.workflow_runs_due()
    for run_id in due:
        runs.workflow_run_enqueue(run_id=run_id)
    return len(due)


def mautic_reconcile_task() -> int:
    if not settings.MAUTIC_ENABLED:
        return 0
    from .workflows.reconcile import mautic_reconcile

    return mautic_reconcile()


def discord_invites_revoke_task() -> dict:
    """Every 5 minutes: delete at Discord the reissued invites a run could not revoke (invite_revoke.py)."""
    if not settings.DISCORD_INVITES_ENABLED:
        return {"revoked": 0, "failed": 0}
    from .workflows.invite_revoke import invites_revoke_pending

    return invites_revoke_pending()


def trials_sync_task() -> str:
    from .trials.sync import trials_sync

    result = trials_sync()
    if result.error:
        raise RuntimeError(f"Trials sync failed, nothing changed: {result.error}")  # a failed task in the admin
    return str(result)
