from core.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="integrations.retry-inbound-webhooks",
        func="integrations.tasks.inbound_webhooks_retry_task",
        cron="* * * * *",
        description="Process failed incoming webhook deliveries again after their backoff.",
    ),
    ScheduledJob(
        name="integrations.retry-workflow-runs",
        func="integrations.tasks.workflow_runs_retry_task",
        cron="* * * * *",
        description="Run failed workflow runs again after their backoff.",
    ),
    ScheduledJob(
        name="integrations.mautic-reconcile",
        func="integrations.tasks.mautic_reconcile_task",
        cron="17 * * * *",
        description="Opted-in Mautic contacts modified since the last run that still lack their invite.",
    ),
    ScheduledJob(
        name="integrations.discord-invites-revoke",
        func="integrations.tasks.discord_invites_revoke_task",
        cron="*/5 * * * *",
        description="Reissued Discord invites whose revocation failed are deleted at Discord again.",
    ),
    ScheduledJob(
        name="integrations.trials-sync",
        func="integrations.tasks.trials_sync_task",
        cron="0 7 * * *",
        description="Trial signups from the website's SQLite database become trial-stage customers.",
    ),
]
