"""Tests: PostgreSQL (DATABASE_URL, defaulting to the machine's local server), task queue run inline, no real email."""

from .base import *  # noqa: F403
from .base import INSTALLED_APPS
from .environment import env

INSTALLED_APPS = [*INSTALLED_APPS, "devtools"]  # the outbox, the demo and the fakes (never in production)

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
DATABASES = {"default": database_config(env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/modready"))}
MIGRATION_MODULES = {}  # PostgreSQL: dj-stripe's own migrations, as in production
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("The test suite runs on PostgreSQL only: set DATABASE_URL=postgres://...")

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True  # serve static files from the apps; tests never run collectstatic
WHITENOISE_AUTOREFRESH = True
STRIPE_TEST_SECRET_KEY = "sk_test_" + "0" * 24 + "modreadytests"

# Webhook receivers in tests listen on 127.0.0.1 over plain http.
WEBHOOKS_ALLOW_PRIVATE_URLS = True
WEBHOOKS_ALLOW_HTTP = True
SEED_DEMO_ALLOWED = True

# No frequency cap or quiet hours unless a test sets them (tests/automations/test_send_gates.py): the other tests
# send marketing emails at whatever hour the suite runs.
MARKETING_FREQUENCY_CAP = 0
MARKETING_QUIET_HOURS_START = MARKETING_QUIET_HOURS_END = 0
# The task queue runs inline here (sync): one drain with one sender, so a drain's wake-ups do not start drains inside
# drains. Tests of several drains or senders at once set these themselves.
AUTOMATIONS_DRAIN_SLOTS = 1
AUTOMATIONS_DRAIN_SENDERS = 1
