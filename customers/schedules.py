from config.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="customers.dispatch-pending-domain-events",
        func="customers.tasks.domain_events_dispatch_pending",
        cron="* * * * *",
        description="Re-dispatch domain events left pending by a crash or a failing subscriber.",
    ),
]
