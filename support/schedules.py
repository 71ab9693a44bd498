from config.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="support.tickets-activity",
        func="support.tasks.tickets_activity_task",
        cron="*/2 * * * *",
        description="Read new messages of open ticket channels: first staff response, last activity, counts.",
    ),
    ScheduledJob(
        name="support.tickets-autoclose",
        func="support.tasks.tickets_autoclose_task",
        cron="*/15 * * * *",
        description="Warn inactive tickets, then close them after the grace period.",
    ),
    ScheduledJob(
        name="support.tickets-close-retry",
        func="support.tasks.tickets_close_retry_task",
        cron="*/5 * * * *",
        description="Retry ticket closes that failed midway (the channel stays until the transcript is saved).",
    ),
]
