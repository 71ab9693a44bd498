from core.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="automations.process-email-queue",
        func="automations.tasks.email_queue_process_task",
        cron="*/2 * * * *",
        description="Send the emails that are due (lifecycle sequences), in batches through the email provider.",
    ),
    ScheduledJob(
        name="automations.resume-abandoned-batches",
        func="automations.tasks.email_batches_resume_task",
        cron="* * * * *",
        description="Wake a drain for email batches whose drain died (their lease ran out), within about a minute.",
    ),
]
