"""Helper of bench/api.py (not a benchmark): the bench settings with the bare comparison views, unthrottled.

The in-process client and the gunicorn workers (DJANGO_SETTINGS_MODULE=bench.api_settings) both use it.
"""

from config.settings.bench import *  # noqa: F403
from config.settings.bench import REST_FRAMEWORK

ROOT_URLCONF = "bench.api_urls"
# The bench measures; it does not throttle.
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"principal": "100000000/min"}}


def main(argv: list[str]) -> None:
    print("bench/api_settings.py is a helper of `bin/bench api`, not a benchmark.")
