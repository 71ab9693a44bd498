"""Settings shared by every environment.

Everything that differs between machines comes from environment variables, each documented in `.env.example`.
`local.py` (the default), `production.py` and `test.py` build on this module. The Django core is here; the rest is
in sections, each its own module, gathered at the end: the REST API and outbound webhooks (`api.py`), the staff
login (`staff_login.py`), the task queue (`queue.py`), and email, Stripe and the apps' outside systems
(`providers.py`).
"""

import os
from pathlib import Path

import dj_database_url

from .environment import env, env_int, env_list

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("MODREADY_VAR_DIR", BASE_DIR / "var"))


DEBUG = False
SECRET_KEY = env("SECRET_KEY")
# Earlier keys, still accepted when checking signatures (unsubscribe links in emails already sent, sessions) but
# never used to sign anything new. Rotating: put the old SECRET_KEY here, set a new one (README, "Rotating SECRET_KEY").
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "config.apps.ModReadyAdminConfig",  # django.contrib.admin with the two-factor site (config/admin_site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "rest_framework_api_key",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "csp",
    "django_q",
    "djstripe",
    "anymail",
    "config.apps.ProjectConfig",
    "customers",
    "billing",
    "automations",
    "integrations",
    "support",
    "api",
    "webhooks",
    "backoffice",
    "marketing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as axes asks: it turns a locked-out login into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

# axes first: it refuses a locked-out username or address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# Database: DATABASE_URL selects PostgreSQL (psycopg 3). Without it the app runs on an embedded SQLite file that the
# web server and the django-q2 cluster share: WAL lets readers run beside the one writer, IMMEDIATE transactions take
# the write lock up front (no "database is locked" upgrade deadlocks), and the busy timeout makes writers queue.
def database_config(url: str) -> dict:
    if url:
        config = dj_database_url.parse(url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60), conn_health_checks=True)
        return config
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "modready.sqlite3",
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        },
    }


DATABASES = {"default": database_config(env("DATABASE_URL"))}
# The embedded SQLite database takes dj-stripe's migrations as one (billing/djstripe_migrations): the same tables and
# recorded history, in seconds instead of minutes. PostgreSQL keeps dj-stripe's own migrations.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    MIGRATION_MODULES = {"djstripe": "billing.djstripe_migrations"}
    # The dashboard's covering indexes (INCLUDE columns, billing.Subscription) are plain indexes on SQLite: the same
    # answers, only read from the table as well. Said once here rather than as a warning on every command.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# `manage.py seed_demo` (demo customers, an admin login) runs only where a settings module allows it: local and test.
SEED_DEMO_ALLOWED = False

# The public base URL of this deployment, used for links in emails (unsubscribe, tracking) and in notifications.
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# How many reverse proxies in front of this app append to X-Forwarded-For. 0 (the default): the client address is
# REMOTE_ADDR and X-Forwarded-For is ignored, since anyone can send that header. N: the N-th address from the right
# of X-Forwarded-For (the one the outermost trusted proxy saw). Read by core.client_address.client_ip.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# /healthz: unhealthy (503) when the scheduler's most overdue job is this many seconds late (it is not running), or
# when a due email has waited this long (the queue is stuck).
HEALTHZ_SCHEDULER_MAX_LAG = env_int("HEALTHZ_SCHEDULER_MAX_LAG", 300)
HEALTHZ_QUEUE_MAX_AGE = env_int("HEALTHZ_QUEUE_MAX_AGE", 900)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

from .api import *  # noqa: E402, F403
from .providers import *  # noqa: E402, F403
from .queue import *  # noqa: E402, F403
from .staff_login import *  # noqa: E402, F403
