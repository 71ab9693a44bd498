"""Send the emails that are due now: `manage.py process_email_queue [--until-done] [--seconds N]`."""

import time

from django.core.management.base import BaseCommand
from django.utils import timezone

from automations.drain import email_queue_process
from automations.models import BatchStatus, EmailBatch, EmailQueueItem, QueueStatus


class Command(BaseCommand):
    help = "Drain the email queue once (what the 2-minute schedule does), or until nothing is left to send."
    # A worker restarted after a crash should be sending within a second; deployments run `check` separately, and a
    # missing provider key still fails the first drain loudly (ImproperlyConfigured).
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=None, help="Time budget of one drain.")
        parser.add_argument(
            "--until-done",
            action="store_true",
            help="Keep draining (also waiting out leases and backoffs) until no due or in-flight email is left.",
        )

    def handle(self, *args, seconds=None, until_done=False, **options):
        totals = {"sent": 0, "failed": 0, "suppressed": 0, "cancelled": 0, "batches": 0, "rate_limited": 0}
        while True:
            result = email_queue_process(time_budget=seconds)
            for key in totals:
                totals[key] += getattr(result, key)
            # While sending is paused (the provider refused our key, domain or quota; or EMAIL_DELIVERY=disabled)
            # nothing more will go out in this run, however long it waits: stop and say why instead of looping forever.
            if result.paused or not until_done or not _work_left():
                break
            time.sleep(0.2)
        self.stdout.write(" ".join(f"{key}={value}" for key, value in totals.items()))
        if result.paused:
            waiting = EmailQueueItem.objects.filter(status=QueueStatus.PENDING, next_attempt_at__lte=timezone.now())
            self.stdout.write(
                f"Stopped: sending is paused. {result.paused} {waiting.count()} due email(s) wait until it resumes"
                " (a probe call every AUTOMATIONS_PAUSE_PROBE_SECONDS, or Automations > Sending pauses >"
                " Resume sending now)."
            )


def _work_left() -> bool:
    now = timezone.now()
    due = EmailQueueItem.objects.filter(status=QueueStatus.PENDING, next_attempt_at__lte=now).exists()
    return due or EmailBatch.objects.filter(status=BatchStatus.SENDING).exists()
