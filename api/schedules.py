from core.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="api.expire-idempotency-keys",
        func="api.tasks.idempotency_records_expire",
        cron="17 * * * *",
        description="Forget Idempotency-Key responses older than API_IDEMPOTENCY_KEY_HOURS.",
    ),
]
