"""What every benchmark shares: a fresh PostgreSQL database, Django set up on it, and tables to print.

    from bench.harness import Table, django_on_fresh_database, percentile
    django_on_fresh_database()            # drops and recreates the bench database, migrates, django.setup()
    table = Table("Ingest", ["variant", "p50 ms", "p99 ms", "rate/s"])
    table.add("async", 3.1, 9.8, 812.0)
    table.print()

Timings are printed, never asserted: run a baseline in the same process, same machine, and print ratios.
"""

import http.client
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/modready_bench"


def django_on_fresh_database(*, migrate: bool = True, keep: bool = False) -> str:
    """Point Django at a freshly created bench database and migrate it. Returns the DATABASE_URL used.

    `keep=True` keeps the database if it exists (a benchmark whose data takes minutes to generate reuses it; the
    migrations still run, so it has the current schema)."""
    import dj_database_url
    import psycopg

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    url = os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    config = dj_database_url.parse(url)
    admin_dsn = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone()
        if not (keep and exists):
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


def requests_over_connections(
    *,
    port: int,
    path: str,
    bodies: Sequence[bytes | None],
    concurrency: int,
    headers_for: Callable[[bytes | None], dict[str, str]] = lambda body: {},
    method: str = "POST",
    rate: float | None = None,
    timeout: float = 120,
) -> tuple[list[float], list[int], float]:
    """Send one request per body to 127.0.0.1:`port` over `concurrency` keep-alive connections, as fast as they go
    (closed loop) or paced at `rate` requests per second (open loop: the answer time without queueing). Headers (a
    signature) are made just before each request. Returns (latencies in ms, statuses with -1 for a transport error,
    wall seconds)."""
    latencies, statuses = [0.0] * len(bodies), [0] * len(bodies)
    indexes = iter(range(len(bodies)))
    lock = threading.Lock()
    begun = time.perf_counter()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        while True:
            with lock:
                index = next(indexes, None)
            if index is None:
                conn.close()
                return
            if rate:
                time.sleep(max(0.0, begun + index / rate - time.perf_counter()))
            body = bodies[index]
            headers = {"Content-Type": "application/json", **headers_for(body)}
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                statuses[index] = response.status
            except (OSError, http.client.HTTPException):
                statuses[index] = -1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            latencies[index] = (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(concurrency) as pool:
        for _ in range(concurrency):
            pool.submit(worker)
    return latencies, statuses, time.perf_counter() - begun
