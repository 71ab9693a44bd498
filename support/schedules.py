from core.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="support.tickets-activity",
        func="support.tasks.tickets_activity_task",
        cron="*/2 * * * *",
        description="Read new messages of open ticket channels: first staff response, last activity, counts; then "
        "the SLA check (a ticket about to miss its target pings its staff role once). While Discord refuses the bot "
        "token, one probe call that clears the alert once it works again.",
    ),
    ScheduledJob(
        name="support.tickets-autoclose",
        func="support.tasks.tickets_autoclose_task",
        cron="*/15 * * * *",
        description="Warn inactive tickets, then close them after the grace period.",
    ),
    ScheduledJob(
        name="support.tickets-retry",
        func="support.tasks.tickets_retry_task",
        cron="*/5 * * * *",
        description="Retry ticket openings and closes that failed midway, and Discord-link emails not sent yet.",
    ),
]
