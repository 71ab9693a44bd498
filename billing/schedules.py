from core.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="billing.stripe-sync",
        func="billing.tasks.stripe_sync_task",
        cron="0 8 * * *",
        description="List every Stripe subscription and heal what webhooks missed.",
    ),
    ScheduledJob(
        name="billing.stripe-events-retry",
        func="billing.tasks.stripe_events_retry_due",
        cron="* * * * *",
        description="Retry failed Stripe events whose backoff is over.",
    ),
    ScheduledJob(
        name="billing.subscription-changes-retry",
        func="billing.tasks.subscription_changes_retry_due",
        cron="*/5 * * * *",
        description="Send again the subscription changes Stripe has not answered (same key, same request).",
    ),
]
