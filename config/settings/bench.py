"""Benchmarks (bench/): PostgreSQL like production, DEBUG off, no HTTPS redirects, emails kept in memory."""

from .base import *  # noqa: F403
from .base import INSTALLED_APPS
from .environment import env

INSTALLED_APPS = [*INSTALLED_APPS, "devtools"]  # the outbox, the demo and the fakes (never in production)

DEBUG = False
SECRET_KEY = "bench-secret-key-not-for-production"  # noqa: S105
ALLOWED_HOSTS = ["*"]
DATABASES = {"default": database_config(env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/modready_bench"))}
MIGRATION_MODULES = {}  # PostgreSQL: dj-stripe's own migrations, as in production
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOGGING = {**LOGGING, "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "WARNING")}}
STRIPE_TEST_SECRET_KEY = "sk_test_" + "0" * 24 + "modreadybench"

# The benchmarks measure the pipeline, not the consent rules: no frequency cap or quiet hours (a 100,000-recipient
# marketing bench would otherwise be deferred to the morning or capped).
MARKETING_FREQUENCY_CAP = 0
MARKETING_QUIET_HOURS_START = MARKETING_QUIET_HOURS_END = 0
