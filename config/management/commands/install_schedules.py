from django.core.management.base import BaseCommand

from core.schedules import declared_jobs, schedules_install


class Command(BaseCommand):
    help = "Install the recurring jobs declared in each app's schedules.py into django-q2 (idempotent)."

    def handle(self, *args, **options):
        result = schedules_install()
        jobs = {job.schedule_name: job for job in declared_jobs()}
        for label, names in (
            ("created", result.created),
            ("updated", result.updated),
            ("unchanged", result.unchanged),
            ("removed", result.removed),
        ):
            for name in names:
                cron = jobs[name].cron if name in jobs else ""
                self.stdout.write(f"{label:>9}  {name}  {cron}")
        self.stdout.write(self.style.SUCCESS(f"{len(jobs)} schedules installed."))
