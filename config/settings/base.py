"""Settings shared by every environment.

Everything that differs between machines comes from environment variables, each documented in `.env.example`.
`local.py` (the default), `production.py` and `test.py` build on this module.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("MODREADY_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if not value:
        return default
    return value.lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return int(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def env_required(name: str) -> str:
    value = env(name)
    if not value:
        raise ImproperlyConfigured(f"The environment variable {name} is required (see .env.example).")
    return value


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
    "devtools",
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
# of X-Forwarded-For (the one the outermost trusted proxy saw). Read by config.client_address.client_ip.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# Django REST framework (the API under /api/v1/, docs/api.md): service accounts authenticate with hashed API keys
# (`Authorization: Api-Key ...`), staff with their admin session; Django model permissions decide what each may do;
# errors have one shape (drf-standardized-errors); lists are cursor-paginated; each key has its own rate budget.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiKeyAuthentication",
        "api.authentication.TwoFactorSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.ModelPermissions"],
    "DEFAULT_SCHEMA_CLASS": "drf_standardized_errors.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.IdCursorPagination",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"principal": env("API_THROTTLE_RATE", "1200/min")},
    "PAGE_SIZE": 50,
}
# The cache every web process shares: DRF's rate limit (API_THROTTLE_RATE holds for the whole site, not per
# process) and the proxy warning (config/client_address.py). PostgreSQL's (or SQLite's) own table `modready_cache` by
# default, created by a migration (api 0002); Redis when CACHE_REDIS_URL is set (redis://host:6379/1). "local" is
# per process, for what must not cost a database write (django-q2's cluster statistics, written twice a second).
CACHE_REDIS_URL = env("CACHE_REDIS_URL")
CACHE_TABLE = "modready_cache"
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_REDIS_URL}
        if CACHE_REDIS_URL
        else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": CACHE_TABLE}
    ),
    "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}
# Seconds between two writes of an API key's last-used time (one write per key per interval, not per request).
API_KEY_LAST_USED_RESOLUTION = env_int("API_KEY_LAST_USED_RESOLUTION", 60)
# Hours an Idempotency-Key's stored response is replayed before the key is forgotten.
API_IDEMPOTENCY_KEY_HOURS = env_int("API_IDEMPOTENCY_KEY_HOURS", 24)
_ERROR_ENUMS = ["ValidationErrorEnum", "ClientErrorEnum", "ServerErrorEnum"] + [
    f"ErrorCode{code}Enum" for code in (401, 403, 404, 405, 406, 415, 429, 500)
]
SPECTACULAR_SETTINGS = {
    "TITLE": "ModReady customer operations API",
    "DESCRIPTION": "Internal REST API of the ModReady back-office. Authentication: `Authorization: Api-Key <key>` "
    "(service accounts) or a staff session. Outbound webhooks (Standard Webhooks) are listed under `webhooks`.",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # A service account's API key, or someone who may use the admin (staff, second factor satisfied).
    "SERVE_PERMISSIONS": ["api.permissions.SchemaReader"],
    # The plain session here: SchemaReader applies the admin's own rule (second factor included) and answers 403.
    "SERVE_AUTHENTICATION": [
        "api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    "WEBHOOKS": [
        f"webhooks.schema.{name}"
        for name in ("PURCHASE", "AT_RISK", "CHURNED", "WIN_BACK", "PAYMENT_FAILED", "PAYMENT_RECOVERED")
    ],
    "ENUM_NAME_OVERRIDES": {
        **{name: f"drf_standardized_errors.openapi_serializers.{name}.choices" for name in _ERROR_ENUMS},
        "LifecycleStageEnum": "customers.lifecycle.Stage.choices",
        "SubscriptionStatusEnum": "billing.models.SubscriptionStatus.choices",
        "QueueStatusEnum": "automations.models.QueueStatus.choices",
        "EnrollmentStatusEnum": "automations.models.EnrollmentStatus.choices",
        "TicketStatusEnum": "support.models.TicketStatus.choices",
        "TicketCategoryEnum": "support.models.TicketCategory.choices",
        "TicketPriorityEnum": "support.models.TicketPriority.choices",
        "WorkflowRunKindEnum": "integrations.models.RunKind.choices",
        "WorkflowRunStatusEnum": "integrations.models.RunStatus.choices",
        "WorkflowStepOutcomeEnum": "integrations.models.StepOutcome.choices",
    },
    "POSTPROCESSING_HOOKS": ["drf_standardized_errors.openapi_hooks.postprocess_schema_enums"],
}

# /healthz: unhealthy (503) when the scheduler's most overdue job is this many seconds late (it is not running), or
# when a due email has waited this long (the queue is stuck).
HEALTHZ_SCHEDULER_MAX_LAG = env_int("HEALTHZ_SCHEDULER_MAX_LAG", 300)
HEALTHZ_QUEUE_MAX_AGE = env_int("HEALTHZ_QUEUE_MAX_AGE", 900)

# --- Staff login: lockout (django-axes), two-factor (django-otp), Content-Security-Policy (django-csp) ---------------

# The client address for lockouts is read per TRUSTED_PROXY_COUNT (above; config/client_address.py).
# After AXES_FAILURE_LIMIT failed logins for one username (from anywhere), or for one username from one address, that
# username is refused for AXES_COOLOFF_MINUTES; every attempt during a lockout starts the cool-off again, so a script
# that keeps trying stays locked out while a person who waits gets back in. A success resets the count. Never on an
# address alone: behind a proxy the settings do not know about (TRUSTED_PROXY_COUNT = 0) every visitor shares the
# proxy's address, and one person's wrong guesses would lock out every staff member (the admin and /healthz warn).
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username"]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_CLIENT_IP_CALLABLE = "config.client_address.client_address"
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
# A superuser without a TOTP device can use nothing but the two-factor setup page (on in production settings).
ADMIN_OTP_REQUIRED_FOR_SUPERUSERS = env_bool("ADMIN_OTP_REQUIRED_FOR_SUPERUSERS", False)
OTP_TOTP_ISSUER = "ModReady back-office"
# The admin's device pages never show a device's secret or QR code: only its owner sees it, once, while enrolling.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# No third-party script anywhere: scripts, styles, fonts and frames only from this origin. Inline styles stay allowed
# (the admin's own templates and email previews use style attributes); inline scripts do not. Images may come from
# https (email previews show the email's images) and data: URIs (the admin's icons, Swagger UI).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "https:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# django-q2: the ORM broker by default (no extra service), Redis when Q_REDIS_URL is set. A task is given `timeout`
# seconds, handed to another worker after `retry` seconds (so retry must exceed timeout, or a slow task runs twice
# at once), and given up after `max_attempts` (django-q2's default, 0, retries forever).
Q_CLUSTER = {
    "name": "modready",
    "workers": env_int("Q_WORKERS", 2),
    "recycle": 500,
    "timeout": env_int("Q_TIMEOUT", 120),
    "retry": env_int("Q_RETRY", 180),
    "max_attempts": env_int("Q_MAX_ATTEMPTS", 5),
    "ack_failures": True,
    "save_limit": 1000,
    "catch_up": False,
    "queue_limit": 100,
    "label": "Task queue",
    "cache": "local",
}
if env("Q_REDIS_URL"):
    Q_CLUSTER["redis"] = env("Q_REDIS_URL")
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 1

# Email. With RESEND_API_KEY the Resend backend (django-anymail) sends; without it, emails go into the local outbox
# (devtools.outbox: a table shown in the admin as "Outbox (local)") where a developer can read them.
# EMAIL_DELIVERY=disabled: the email queue sends nothing and marks nothing sent (due emails stay pending and go out
# once delivery is enabled again), and every other email (password resets, "send me a test") is refused with an
# error instead of being dropped. Production requires it to be set explicitly when Resend is not configured.
EMAIL_DELIVERY = env("EMAIL_DELIVERY", "enabled").lower()
if EMAIL_DELIVERY not in ("enabled", "disabled"):
    raise ImproperlyConfigured(f"EMAIL_DELIVERY must be enabled or disabled, not {EMAIL_DELIVERY!r}.")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "ModReady <hello@modready.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
RESEND_API_KEY = env("RESEND_API_KEY")
ANYMAIL = {
    "RESEND_API_KEY": RESEND_API_KEY,
    "RESEND_SIGNING_SECRET": env("RESEND_SIGNING_SECRET"),
    "RESEND_API_URL": env("RESEND_API_URL", "https://api.resend.com/"),
}
# anymail's Resend backend plus the Idempotency-Key header (integrations/resend/backend.py), or the local outbox.
EMAIL_BACKEND = "integrations.resend.backend.EmailBackend" if RESEND_API_KEY else "devtools.outbox.EmailBackend"
if EMAIL_DELIVERY == "disabled":
    EMAIL_BACKEND = "integrations.email_disabled.EmailBackend"

# Stripe through dj-stripe. Keys are read from the environment; STRIPE_API_HOST is only for fakes (tests, benchmarks).
STRIPE_LIVE_MODE = env_bool("STRIPE_LIVE_MODE")
STRIPE_LIVE_SECRET_KEY = env("STRIPE_LIVE_SECRET_KEY")
STRIPE_TEST_SECRET_KEY = env("STRIPE_TEST_SECRET_KEY")
STRIPE_API_VERSION = "2025-03-31.basil"
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
if env("STRIPE_API_HOST"):
    STRIPE_API_HOST = env("STRIPE_API_HOST")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Billing (billing app) -------------------------------------------------------------------------------------------

# Only ModReady products make CRM records: a product counts when its id is listed here (comma-separated) or when
# its Stripe metadata has modready=true. Everything else stays in dj-stripe's mirror only.
MODREADY_STRIPE_PRODUCT_IDS = env_list("MODREADY_STRIPE_PRODUCT_IDS")
MODREADY_STRIPE_PRODUCT_METADATA_FLAG = "modready"
# Webhook deliveries larger than this are refused with 413 (Stripe's events are a few kilobytes).
BILLING_WEBHOOK_MAX_BYTES = env_int("BILLING_WEBHOOK_MAX_BYTES", 512 * 1024)
# Seconds a Stripe-Signature timestamp may be old (stripe-python's default).
BILLING_WEBHOOK_TOLERANCE = env_int("BILLING_WEBHOOK_TOLERANCE", 300)
# The id of dj-stripe's WebhookEndpoint row that `manage.py stripe_webhook_endpoint` writes from STRIPE_WEBHOOK_SECRET
# (the Stripe dashboard's we_... id when known; any stable id works, the row only holds the secret).
BILLING_WEBHOOK_ENDPOINT_ID = env("BILLING_WEBHOOK_ENDPOINT_ID", "we_modready_crm")
# Attempts before a failing Stripe event is given up (it stays in the admin, reprocessable by hand).
BILLING_EVENT_MAX_ATTEMPTS = env_int("BILLING_EVENT_MAX_ATTEMPTS", 8)

# --- Automations (automations app) -----------------------------------------------------------------------------------
# How the email queue sends: "resend" (Resend's API through integrations/resend, batches of up to
# AUTOMATIONS_BATCH_SIZE) or "django" (one message at a time through EMAIL_BACKEND: the local outbox, locmem in tests).
AUTOMATIONS_EMAIL_TRANSPORT = env("AUTOMATIONS_EMAIL_TRANSPORT", "resend" if RESEND_API_KEY else "django")
if EMAIL_DELIVERY == "disabled":
    # Every send goes through EMAIL_BACKEND, which refuses it, even with a Resend key present ("send me a test" too).
    AUTOMATIONS_EMAIL_TRANSPORT = "django"
AUTOMATIONS_BATCH_SIZE = min(100, env_int("AUTOMATIONS_BATCH_SIZE", 100))  # Resend's batch endpoint takes 100 at most
# Calls per second to Resend, shared by all workers (Resend's limit is per team: 2 or 5 by default). Resend's
# `ratelimit-limit` answer header overrides it at run time; 0 turns pacing off (429s are still honoured).
AUTOMATIONS_RESEND_REQUESTS_PER_SECOND = float(env("AUTOMATIONS_RESEND_REQUESTS_PER_SECOND", "2"))
# A call whose outcome is unknown (5xx, timeout, dropped connection, 409 in progress) is retried unchanged under its
# key with exponential backoff (base * 2^(attempt-1), at most RETRY_MAX_SECONDS apart) until Resend answers or
# RETRY_WINDOW_SECONDS after the first call (Resend remembers a key for 24 h); then its emails become "unconfirmed".
AUTOMATIONS_RETRY_BASE_SECONDS = env_int("AUTOMATIONS_RETRY_BASE_SECONDS", 30)
AUTOMATIONS_RETRY_MAX_SECONDS = env_int("AUTOMATIONS_RETRY_MAX_SECONDS", 1800)
AUTOMATIONS_RETRY_WINDOW_SECONDS = env_int("AUTOMATIONS_RETRY_WINDOW_SECONDS", 23 * 3600)
# While sending is paused by a configuration error (401/403), one probe call every this many seconds.
AUTOMATIONS_PAUSE_PROBE_SECONDS = env_int("AUTOMATIONS_PAUSE_PROBE_SECONDS", 60)
# Drains that may be queued or running at once (across all qcluster processes); wake-ups beyond are coalesced.
AUTOMATIONS_DRAIN_SLOTS = env_int("AUTOMATIONS_DRAIN_SLOTS", 2)
# A claimed batch's lease, renewed while its drain works on it: a batch whose drain died is sent again (same
# idempotency key) by the next minute's resume job once this many seconds have passed without a renewal.
AUTOMATIONS_LEASE_SECONDS = env_int("AUTOMATIONS_LEASE_SECONDS", 30)
# Read timeout of one call to Resend, in seconds (connect timeout is 3 s).
AUTOMATIONS_SEND_TIMEOUT = float(env("AUTOMATIONS_SEND_TIMEOUT", "15"))
# How long one queue run may keep draining (the schedule runs every 2 minutes, below django-q2's task timeout).
AUTOMATIONS_DRAIN_SECONDS = env_int("AUTOMATIONS_DRAIN_SECONDS", 90)
# Opens within this many seconds of delivery are counted as machine opens (privacy proxies, link scanners).
AUTOMATIONS_MACHINE_OPEN_SECONDS = env_int("AUTOMATIONS_MACHINE_OPEN_SECONDS", 10)
# Links used in email copy.
AUTOMATIONS_WEBSITE_URL = env("AUTOMATIONS_WEBSITE_URL", "https://modready.example")
AUTOMATIONS_DISCORD_URL = env("AUTOMATIONS_DISCORD_URL", "https://discord.gg/modready")
AUTOMATIONS_PANEL_URL = env("AUTOMATIONS_PANEL_URL", "https://panel.modready.example")
AUTOMATIONS_BILLING_URL = env("AUTOMATIONS_BILLING_URL", "https://modready.example/account/billing")

# --- Support over Discord (support app, integrations/discord) --------------------------------------------------------
# Discord POSTs interactions to /api/discord/interactions; the bot works through the REST API only (no gateway).
# DISCORD_ENABLED=1 requires the ids and keys below and fails at start naming the first one missing.
DISCORD_ENABLED = env_bool("DISCORD_ENABLED")
DISCORD_APPLICATION_ID = env("DISCORD_APPLICATION_ID")
DISCORD_PUBLIC_KEY = env("DISCORD_PUBLIC_KEY")  # hex, from the developer portal: verifies interaction signatures
DISCORD_BOT_TOKEN = env("DISCORD_BOT_TOKEN")
DISCORD_GUILD_ID = env("DISCORD_GUILD_ID")
DISCORD_STAFF_ROLE_ID = env("DISCORD_STAFF_ROLE_ID")
DISCORD_SUPPORT_CHANNEL_ID = env("DISCORD_SUPPORT_CHANNEL_ID")
# Ticket categories in order: the first is used until it holds 50 channels, then the next (overflow).
DISCORD_TICKET_CATEGORY_IDS = env_list("DISCORD_TICKET_CATEGORY_IDS")
DISCORD_API_URL = env("DISCORD_API_URL", "https://discord.com/api/v10")  # tests and benchmarks point it at a fake
DISCORD_TIMEOUT = float(env("DISCORD_TIMEOUT", "15"))  # read timeout of one REST call, seconds
# Support hours: days (mon-sun, ranges allowed) and a time range in DISCORD_SUPPORT_TIMEZONE. Outside them tickets
# still open, with a notice of when staff are back. Empty = always staffed.
DISCORD_SUPPORT_HOURS = env("DISCORD_SUPPORT_HOURS", "mon-fri 09:00-18:00")
DISCORD_SUPPORT_TIMEZONE = env("DISCORD_SUPPORT_TIMEZONE", "Europe/Berlin")
DISCORD_MAX_OPEN_TICKETS_PER_USER = env_int("DISCORD_MAX_OPEN_TICKETS_PER_USER", 3)
DISCORD_REOPEN_COOLDOWN_MINUTES = env_int("DISCORD_REOPEN_COOLDOWN_MINUTES", 10)
# Minutes the emailed link that connects a Discord account to a customer stays valid (support/identity.py).
DISCORD_LINK_CONFIRM_MINUTES = env_int("DISCORD_LINK_CONFIRM_MINUTES", 30)
# Inactivity: a warning after DISCORD_AUTOCLOSE_WARN_HOURS without a message, the close DISCORD_AUTOCLOSE_GRACE_HOURS
# after the warning if still nothing was said.
DISCORD_AUTOCLOSE_WARN_HOURS = env_int("DISCORD_AUTOCLOSE_WARN_HOURS", 48)
DISCORD_AUTOCLOSE_GRACE_HOURS = env_int("DISCORD_AUTOCLOSE_GRACE_HOURS", 24)
# Attachments larger than this are kept as metadata only in the transcript (bytes).
DISCORD_ATTACHMENT_MAX_BYTES = env_int("DISCORD_ATTACHMENT_MAX_BYTES", 8 * 1024 * 1024)

if DISCORD_ENABLED:
    for _name in (
        "DISCORD_APPLICATION_ID",
        "DISCORD_PUBLIC_KEY",
        "DISCORD_BOT_TOKEN",
        "DISCORD_GUILD_ID",
        "DISCORD_STAFF_ROLE_ID",
        "DISCORD_SUPPORT_CHANNEL_ID",
        "DISCORD_TICKET_CATEGORY_IDS",
    ):
        if not globals()[_name]:
            raise ImproperlyConfigured(f"DISCORD_ENABLED is on but {_name} is empty (see .env.example).")

# --- Integrations (integrations app): the crowdfunding workflows and the trials sync ---------------------------------
# Each provider is off unless its *_ENABLED flag is set; an enabled provider with a missing variable stops the process
# at start (integrations.apps), naming the variable.
MAUTIC_ENABLED = env_bool("MAUTIC_ENABLED")
MAUTIC_BASE_URL = env("MAUTIC_BASE_URL")  # e.g. https://mautic.modready.example (the API is under /api)
MAUTIC_USERNAME = env("MAUTIC_USERNAME")  # Basic auth (enable it in Mautic's API settings)
MAUTIC_PASSWORD = env("MAUTIC_PASSWORD")
MAUTIC_WEBHOOK_SECRET = env("MAUTIC_WEBHOOK_SECRET")  # the secret of the webhook in Mautic, verifies Webhook-Signature
MAUTIC_EMAIL_INVITE_VIP = env("MAUTIC_EMAIL_INVITE_VIP")  # Mautic email ids sent by the workflows
MAUTIC_EMAIL_INVITE_BASIC = env("MAUTIC_EMAIL_INVITE_BASIC")
MAUTIC_EMAIL_COUPON = env("MAUTIC_EMAIL_COUPON")
MAUTIC_WEBHOOK_MAX_BYTES = env_int("MAUTIC_WEBHOOK_MAX_BYTES", 1024 * 1024)

SHOPWARE_ENABLED = env_bool("SHOPWARE_ENABLED")
SHOPWARE_BASE_URL = env("SHOPWARE_BASE_URL")  # the shop's URL; the Admin API is under /api
SHOPWARE_CLIENT_ID = env("SHOPWARE_CLIENT_ID")  # an integration's access key id (client credentials)
SHOPWARE_CLIENT_SECRET = env("SHOPWARE_CLIENT_SECRET")
SHOPWARE_VIP_PROMOTION_ID = env("SHOPWARE_VIP_PROMOTION_ID")  # with useCodes and useIndividualCodes on

ESPOCRM_ENABLED = env_bool("ESPOCRM_ENABLED")
ESPOCRM_BASE_URL = env("ESPOCRM_BASE_URL")  # the API is under /api/v1
ESPOCRM_API_KEY = env("ESPOCRM_API_KEY")

DISCORD_INVITES_ENABLED = env_bool("DISCORD_INVITES_ENABLED")
DISCORD_INVITE_CHANNEL_ID = env("DISCORD_INVITE_CHANNEL_ID")  # the channel the invites open on
# Seconds an invite lives (0 = forever, at most 604800). Discord's own default is 24 hours, which would expire
# links people read days later; a week is Discord's longest finite age, and expired invites free the 1,000 cap.
DISCORD_INVITE_MAX_AGE = env_int("DISCORD_INVITE_MAX_AGE", 604800)
DISCORD_INVITE_ROLE_ID_VIP = env("DISCORD_INVITE_ROLE_ID_VIP")  # granted on acceptance (needs MANAGE_ROLES); optional
DISCORD_INVITE_ROLE_ID_BASIC = env("DISCORD_INVITE_ROLE_ID_BASIC")

# The Stripe product whose purchase is a VIP reservation (workflow 2).
STRIPE_VIP_RESERVATION_PRODUCT_ID = env("STRIPE_VIP_RESERVATION_PRODUCT_ID")

# Failed workflow runs are retried with exponential backoff (base * 2^(attempt-1), at most 6 h) up to this many times.
INTEGRATIONS_RUN_MAX_ATTEMPTS = env_int("INTEGRATIONS_RUN_MAX_ATTEMPTS", 8)
INTEGRATIONS_RETRY_BASE_SECONDS = env_int("INTEGRATIONS_RETRY_BASE_SECONDS", 60)
# A running workflow run holds a lease of this many seconds, renewed while it works; a run whose worker died is
# resumed by the next minute's sweep once its lease has run out.
INTEGRATIONS_RUN_LEASE_SECONDS = env_int("INTEGRATIONS_RUN_LEASE_SECONDS", 30)

# The website's trial signups (SQLite, opened read-only) synced daily at 07:00 UTC.
TRIALS_DB_PATH = env("TRIALS_DB_PATH", "/var/www/modready-api/trials.db")
TRIALS_TABLE = env("TRIALS_TABLE", "trials")
# --- Outbound webhooks (webhooks app) --------------------------------------------------------------------------------
# Wall-clock deadline of one delivery attempt, in seconds: connecting plus reading the whole answer (Standard Webhooks
# receivers should answer fast). Keep it well under the task timeout (Q_TIMEOUT).
WEBHOOKS_TIMEOUT = env_int("WEBHOOKS_TIMEOUT", 15)
# Server-side request forgery guard: endpoint URLs resolving to loopback/private/link-local addresses are refused,
# and plain http is refused, unless these are set (development and tests only).
WEBHOOKS_ALLOW_PRIVATE_URLS = env_bool("WEBHOOKS_ALLOW_PRIVATE_URLS")
WEBHOOKS_ALLOW_HTTP = env_bool("WEBHOOKS_ALLOW_HTTP")
