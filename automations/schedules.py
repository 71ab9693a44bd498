from config.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="automations.process-email-queue",
        func="automations.tasks.email_queue_process_task",
        cron="*/2 * * * *",
        description="Send the emails that are due (lifecycle sequences), in batches through Resend.",
    ),
]
