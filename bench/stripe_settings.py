"""Helper of bench/stripe_ingest.py (not a benchmark): the bench settings plus URLs for the two comparison views.

The app under gunicorn runs with DJANGO_SETTINGS_MODULE=bench.stripe_settings; STRIPE_API_HOST (from the
environment, read by config.settings.providers) points dj-stripe and our code at the fake Stripe.
"""

from config.settings.bench import *  # noqa: F403

ROOT_URLCONF = "bench.stripe_urls"


def main(argv: list[str]) -> None:
    print("bench/stripe_settings.py is a helper of `bin/bench stripe_ingest`, not a benchmark.")
