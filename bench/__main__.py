"""Run one benchmark: `bin/bench <name> [options]` (or `python -m bench <name>`). `bin/bench --list` lists them.

A benchmark is a module bench/<name>.py with `main(argv: list[str]) -> None` that prints its tables. It runs
against its own PostgreSQL database (DATABASE_URL, default modready_bench), created afresh by bench.harness.
"""

import importlib
import pkgutil
import sys
from pathlib import Path

# Support modules of benchmarks, not benchmarks themselves.
NOT_BENCHMARKS = {
    "harness",
    "__main__",
    "stripe_settings",
    "stripe_urls",
    "api_urls",
    "api_settings",
    "email_drain_production",
}


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name not in NOT_BENCHMARKS)


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] in {"-h", "--help", "--list"}:
        print("usage: bin/bench <name> [options]\n\nbenchmarks:\n" + "\n".join(f"  {n}" for n in available()))
        return
    name, rest = args[0], args[1:]
    if name not in available():
        sys.exit(f"no benchmark named {name!r}; try one of: {', '.join(available())}")
    importlib.import_module(f"bench.{name}").main(rest)


if __name__ == "__main__":
    main()
