from core.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="marketing.broadcasts-tick",
        func="marketing.broadcast_tasks.broadcasts_tick",
        cron="* * * * *",
        description="Broadcasts: start the scheduled ones that are due, end A/B tests whose wait has passed, run the "
        "deliverability guard, and mark finished ones as sent.",
    ),
]
