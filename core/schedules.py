"""Recurring jobs, declared in code by each app and installed idempotently.

An app lists its jobs in `<app>/schedules.py` as `SCHEDULES = [ScheduledJob(...), ...]`. `manage.py
install_schedules` (run by bin/run and by every deployment) writes them to django-q2's Schedule table with
`update_or_create(name=...)`, and removes schedules this project installed earlier but no longer declares. Nobody
clicks a schedule together in the admin: a change is a code change.
"""

from dataclasses import dataclass
from datetime import datetime
from importlib import import_module

from croniter import croniter
from django.apps import apps
from django.db import transaction
from django.utils import timezone

# Every schedule this project installs carries this prefix, so stale ones can be told from hand-made ones.
NAME_PREFIX = "modready:"


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    func: str
    cron: str  # UTC, five fields
    description: str = ""

    @property
    def schedule_name(self) -> str:
        return f"{NAME_PREFIX}{self.name}"

    def next_run(self, after: datetime) -> datetime:
        return croniter(self.cron, after).get_next(datetime)


def declared_jobs() -> list[ScheduledJob]:
    jobs: list[ScheduledJob] = []
    for app_config in apps.get_app_configs():
        try:
            module = import_module(f"{app_config.name}.schedules")
        except ModuleNotFoundError as exc:
            if exc.name != f"{app_config.name}.schedules":
                raise
            continue
        jobs.extend(getattr(module, "SCHEDULES", []))
    names = [job.name for job in jobs]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise ValueError(f"Schedules declared twice: {sorted(duplicates)}")
    return jobs


@dataclass
class InstallResult:
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]


@transaction.atomic
def schedules_install(*, now: datetime | None = None) -> InstallResult:
    from django_q.models import Schedule

    now = now or timezone.now()
    result = InstallResult(created=[], updated=[], unchanged=[], removed=[])
    declared = declared_jobs()
    for job in declared:
        existing = Schedule.objects.filter(name=job.schedule_name).first()
        if existing and existing.func == job.func and existing.cron == job.cron and existing.repeats == -1:
            result.unchanged.append(job.schedule_name)
            continue
        Schedule.objects.update_or_create(
            name=job.schedule_name,
            defaults={
                "func": job.func,
                "schedule_type": Schedule.CRON,
                "cron": job.cron,
                "repeats": -1,
                "next_run": job.next_run(now),
            },
        )
        (result.updated if existing else result.created).append(job.schedule_name)
    stale = Schedule.objects.filter(name__startswith=NAME_PREFIX).exclude(name__in=[j.schedule_name for j in declared])
    result.removed = list(stale.values_list("name", flat=True))
    stale.delete()
    return result
