from core.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="webhooks.send-due-deliveries",
        func="webhooks.tasks.webhook_deliveries_send_due",
        cron="* * * * *",
        description="Send outbound webhook retries that are due, and deliveries a lost enqueue left pending.",
    ),
]
