"""What every benchmark shares: a fresh PostgreSQL database, Django set up on it, and tables to print.

    from bench.harness import Table, django_on_fresh_database, percentile
    django_on_fresh_database()            # drops and recreates the bench database, migrates, django.setup()
    table = Table("Ingest", ["variant", "p50 ms", "p99 ms", "rate/s"])
    table.add("async", 3.1, 9.8, 812.0)
    table.print()

Timings are printed, never asserted: run a baseline in the same process, same machine, and print ratios.
"""

import os
import statistics
import sys
from collections.abc import Sequence

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/modready_bench"


def django_on_fresh_database(*, migrate: bool = True) -> str:
    """Point Django at a freshly created bench database and migrate it. Returns the DATABASE_URL used."""
    import dj_database_url
    import psycopg

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    url = os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    config = dj_database_url.parse(url)
    admin_dsn = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{config["NAME"]}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{config["NAME"]}"')
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    return url


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Table:
    def __init__(self, title: str, columns: list[str]):
        self.title, self.columns, self.rows = title, columns, []

    def add(self, *cells) -> None:
        self.rows.append([_cell(c) for c in cells])

    def print(self, file=sys.stdout) -> None:
        widths = [max(len(str(col)), *(len(row[i]) for row in self.rows)) for i, col in enumerate(self.columns)]
        line = "-+-".join("-" * w for w in widths)
        print(f"\n{self.title}", file=file)
        print(line, file=file)
        print(" | ".join(str(c).ljust(w) for c, w in zip(self.columns, widths, strict=True)), file=file)
        print(line, file=file)
        for row in self.rows:
            cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
            print(" | ".join(cells), file=file)
        print(line, file=file, flush=True)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
