"""The trials sync: the website's SQLite file, read-only, into trial-stage customers."""

import sqlite3
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from customers.lifecycle import Stage
from customers.models import Customer
from integrations.trials.sync import trials_sync
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def trials_db(path, rows, *, table="trials", columns=("email", "created_at", "game", "plan")):
    connection = sqlite3.connect(path)
    connection.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
    connection.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in columns)})", rows)  # noqa: S608 (test data)
    connection.commit()
    connection.close()
    return str(path)


def test_creates_trial_customers_with_metadata_and_timeline(tmp_path):
    path = trials_db(
        tmp_path / "trials.db",
        [
            ("Ada@Example.com", "2026-11-20T10:00:00Z", "valheim", "4gb"),
            ("bob@example.com", 1763632800, "minecraft", "2gb"),
            ("", "2026-11-20T10:00:00", "x", "y"),  # no email: skipped
            ("carl@example.com", "not a time", "x", "y"),  # no usable time: skipped
        ],
    )

    result = trials_sync(path=path, table="trials")

    assert (result.read, result.created, result.moved_to_trial, result.skipped_rows) == (2, 2, 2, 2)
    ada = Customer.objects.get(email="ada@example.com")
    assert ada.lifecycle_stage == Stage.TRIAL
    assert ada.metadata["trial"] == {"game": "valheim", "plan": "4gb"}
    event = ada.timeline_events.get(kind="trial.started")
    assert event.occurred_at == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert Customer.objects.get(email="bob@example.com").timeline_events.get().occurred_at == datetime.fromtimestamp(
        1763632800, tz=UTC
    )

    again = trials_sync(path=path, table="trials")  # the next morning: nothing new
    assert (again.created, again.moved_to_trial) == (0, 0)
    assert ada.timeline_events.count() == 1


def test_updates_existing_customers_and_never_moves_a_paying_one_back(tmp_path):
    paying = CustomerFactory(email="paying@example.com", lifecycle_stage=Stage.ACTIVE)
    prospect = CustomerFactory(email="prospect@example.com", lifecycle_stage=Stage.DISCOVERY)
    path = trials_db(
        tmp_path / "trials.db",
        [
            ("paying@example.com", "2026-11-20 10:00:00", "rust", "8gb"),
            ("prospect@example.com", "2026-11-20", "a", "b"),
        ],
    )

    trials_sync(path=path, table="trials")

    paying.refresh_from_db()
    prospect.refresh_from_db()
    assert paying.lifecycle_stage == Stage.ACTIVE
    assert paying.metadata["trial"]["game"] == "rust"
    assert paying.timeline_events.filter(kind="trial.started").exists()
    assert prospect.lifecycle_stage == Stage.TRIAL


def test_other_column_names_are_recognised(tmp_path):
    path = trials_db(
        tmp_path / "t.db",
        [("eve@example.com", "2026-11-01T08:00:00+01:00", "1")],
        table="signups",
        columns=("email_address", "signup_at", "server_id"),
    )
    assert trials_sync(path=path, table="signups").created == 1
    assert Customer.objects.get(email="eve@example.com").metadata["trial"] == {"server_id": "1"}


def test_missing_file_is_a_clear_error_and_changes_nothing(tmp_path, caplog):
    missing = tmp_path / "nope.db"
    result = trials_sync(path=str(missing), table="trials")

    assert "does not exist" in result.error
    assert "nothing changed" in caplog.text.lower()
    assert not missing.exists()  # read-only: no empty database was created
    assert Customer.objects.count() == 0
    with pytest.raises(CommandError, match="does not exist"):
        call_command("sync_trials", path=str(missing))


@pytest.mark.parametrize("problem", ["not sqlite", "no table", "no email column"])
def test_unreadable_file_is_a_clear_error_and_changes_nothing(tmp_path, problem):
    path = tmp_path / "trials.db"
    if problem == "not sqlite":
        path.write_bytes(b"this is not a database" * 100)
    elif problem == "no table":
        trials_db(path, [], table="other")
    else:
        trials_db(path, [("x", "2026-11-20")], columns=("name", "created_at"))

    result = trials_sync(path=str(path), table="trials")

    assert result.error and Customer.objects.count() == 0


def test_a_locked_file_is_a_clear_error(tmp_path, monkeypatch):
    path = trials_db(tmp_path / "trials.db", [("ada@example.com", "2026-11-20", "a", "b")])
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA locking_mode=EXCLUSIVE")
    writer.execute("BEGIN EXCLUSIVE")  # the website is writing
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: connect(*a, **{**k, "timeout": 0.1}))
    try:
        result = trials_sync(path=path, table="trials")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert "locked" in result.error and Customer.objects.count() == 0


def test_the_command_reads_the_configured_path(tmp_path, settings, capsys):
    settings.TRIALS_DB_PATH = trials_db(tmp_path / "trials.db", [("ada@example.com", "2026-11-20", "a", "b")])
    call_command("sync_trials")
    assert "1 signups read, 1 customers created" in capsys.readouterr().out


def test_the_sync_and_the_reconciliation_are_scheduled():
    from core.schedules import declared_jobs

    jobs = {job.name: job for job in declared_jobs()}
    assert jobs["integrations.trials-sync"].cron == "0 7 * * *"
    assert jobs["integrations.trials-sync"].func == "integrations.tasks.trials_sync_task"
    assert jobs["integrations.mautic-reconcile"].cron.split()[1:] == ["*", "*", "*", "*"]  # hourly
