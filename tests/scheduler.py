"""Run the schedule as the cluster's scheduler would over a span of time, on a moved clock (no sleeping)."""

from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.module_loading import import_string

from core.schedules import declared_jobs
from devtools.clock import as_of


def next_even_minute(after: datetime | None = None) -> datetime:
    """The next UTC minute divisible by two (a moment just after which only the every-minute jobs run for a minute)."""
    after = after or timezone.now()
    moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return moment if moment.minute % 2 == 0 else moment + timedelta(minutes=1)


def run_schedules(*, app: str, after: datetime, until: datetime) -> list[str]:
    """Run `app`'s scheduled jobs due in (after, until], each at its moment, in time order. Returns what ran."""
    due = []
    for job in declared_jobs():
        if not job.name.startswith(f"{app}."):
            continue
        moment = job.next_run(after)
        while moment <= until:
            due.append((moment, job))
            moment = job.next_run(moment)
    ran = []
    for moment, job in sorted(due, key=lambda entry: entry[0]):
        with as_of(moment):
            import_string(job.func)()
        ran.append(f"{moment:%H:%M:%S} {job.name}")
    return ran
