from core.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="marketing.broadcasts-tick",
        func="marketing.broadcast_tasks.broadcasts_tick",
        cron="* * * * *",
        description="Broadcasts: start the scheduled ones that are due, end A/B tests whose wait has passed, run the "
        "deliverability guard, start again a queuing that has not moved for 2 minutes, and mark finished ones as sent.",
    ),
]
