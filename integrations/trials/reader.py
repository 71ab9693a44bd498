"""Reading the website's trial signups from its SQLite file, read-only and defensively.

The file's schema is not documented, so the reader accepts what it can recognise: a column holding the email
(`email`, `email_address`, `user_email`) and one holding the signup time (`created_at`, `signup_at`,
`signed_up_at`, `signup_time`, `created`, `timestamp`), ISO 8601 text or Unix seconds. Every other column goes into
the customer's metadata as it is. Rows without a usable email or time are skipped and counted.

The file is opened with SQLite's URI `mode=ro`, so this process can never write to the website's database, and a
missing file is an error instead of an empty new database.
"""

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EMAIL_COLUMNS = ("email", "email_address", "user_email")
TIME_COLUMNS = ("created_at", "signup_at", "signed_up_at", "signup_time", "created", "timestamp")


class TrialsUnreadable(Exception):
    """The file is missing, locked, not a SQLite database, or lacks the required columns."""


@dataclass
class TrialSignup:
    email: str
    signed_up_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrialsRead:
    signups: list[TrialSignup]
    skipped: int


def parse_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().replace(".", "", 1).isdigit()):
        seconds = float(value)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        return datetime.fromtimestamp(seconds, tz=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)  # the website writes UTC


def trials_read(*, path: str, table: str) -> TrialsRead:
    if not Path(path).is_file():
        raise TrialsUnreadable(f"trial database {path} does not exist")
    try:
        connection = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        raise TrialsUnreadable(f"cannot open {path} read-only: {exc}") from exc
    try:
        connection.row_factory = sqlite3.Row
        quoted = '"' + table.replace('"', '""') + '"'
        try:
            rows = connection.execute(f"SELECT * FROM {quoted}").fetchall()  # noqa: S608 (quoted identifier)
        except sqlite3.Error as exc:  # locked, not a database, no such table
            raise TrialsUnreadable(f"cannot read table {table!r} of {path}: {exc}") from exc
    finally:
        connection.close()
    if not rows:
        return TrialsRead(signups=[], skipped=0)
    columns = {name.lower(): name for name in rows[0].keys()}  # noqa: SIM118 (sqlite3.Row iterates values)
    email_column = next((columns[c] for c in EMAIL_COLUMNS if c in columns), None)
    time_column = next((columns[c] for c in TIME_COLUMNS if c in columns), None)
    if not email_column or not time_column:
        raise TrialsUnreadable(
            f"table {table!r} of {path} needs an email column ({', '.join(EMAIL_COLUMNS)}) and a signup time column "
            f"({', '.join(TIME_COLUMNS)}); it has {', '.join(rows[0].keys())}"
        )
    signups, skipped = [], 0
    for row in rows:
        email = str(row[email_column] or "").strip().lower()
        signed_up_at = parse_time(row[time_column])
        if "@" not in email or signed_up_at is None:
            skipped += 1
            continue
        names = row.keys()  # iterating a sqlite3.Row gives values, not names
        extra = {k: row[k] for k in names if k not in (email_column, time_column) and _json_safe(row[k])}
        signups.append(TrialSignup(email=email, signed_up_at=signed_up_at, extra=extra))
    return TrialsRead(signups=signups, skipped=skipped)


def _json_safe(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float)
