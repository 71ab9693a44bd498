import pytest
from django.core.management import call_command
from django_q.models import Schedule

from core.schedules import NAME_PREFIX, declared_jobs, schedules_install

pytestmark = pytest.mark.django_db


def test_install_is_idempotent_and_uses_cron():
    first = schedules_install()
    second = schedules_install()

    declared = {job.schedule_name for job in declared_jobs()}
    assert set(first.created) == declared
    assert second.created == [] and second.updated == []
    assert set(second.unchanged) == declared
    for schedule in Schedule.objects.filter(name__startswith=NAME_PREFIX):
        assert schedule.schedule_type == Schedule.CRON
        assert schedule.repeats == -1


def test_install_repairs_a_changed_schedule_and_removes_stale_ones():
    schedules_install()
    job = declared_jobs()[0]
    Schedule.objects.filter(name=job.schedule_name).update(cron="0 0 1 1 *")
    Schedule.objects.create(name=f"{NAME_PREFIX}gone", func="x.y", schedule_type=Schedule.CRON, cron="* * * * *")
    Schedule.objects.create(name="made by hand", func="x.y", schedule_type=Schedule.HOURLY)

    result = schedules_install()

    assert result.updated == [job.schedule_name]
    assert result.removed == [f"{NAME_PREFIX}gone"]
    assert Schedule.objects.get(name=job.schedule_name).cron == job.cron
    assert Schedule.objects.filter(name="made by hand").exists()


def test_command_prints_what_it_did(capsys):
    call_command("install_schedules")
    assert "schedules installed" in capsys.readouterr().out
