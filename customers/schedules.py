from core.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="customers.dispatch-pending-domain-events",
        func="customers.tasks.domain_events_dispatch_pending",
        cron="* * * * *",
        description="Re-dispatch domain events left pending by a crash or a failing subscriber.",
    ),
    ScheduledJob(
        name="customers.onboarding-settle",
        func="customers.tasks.onboarding_settle_task",
        cron="15 6 * * *",
        description="Move customers in Onboarding for 30 days (no failed payment, no cancellation) to Active.",
    ),
]
