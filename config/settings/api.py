"""The REST API (DRF, its schema, API keys, the shared cache) and outbound webhooks. Part of base.py."""

from .environment import env, env_bool, env_int

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
# process) and the proxy warning (core/client_address.py). PostgreSQL's (or SQLite's) own table `modready_cache` by
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
        for name in (
            "PURCHASE",
            "AT_RISK",
            "CHURNED",
            "WIN_BACK",
            "PAYMENT_FAILED",
            "PAYMENT_RECOVERED",
            "SUBSCRIPTION_PAUSED",
            "SUBSCRIPTION_RESUMED",
            "SUBSCRIPTION_CANCELLATION_SCHEDULED",
            "SUBSCRIPTION_PLAN_CHANGED",
        )
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
        "BroadcastStatusEnum": "marketing.broadcast_models.BroadcastStatus.choices",
        "CancelSessionOutcomeEnum": "billing.retention.models.CancelOutcome.choices",
    },
    "POSTPROCESSING_HOOKS": ["drf_standardized_errors.openapi_hooks.postprocess_schema_enums"],
}

# --- Outbound webhooks (webhooks app) --------------------------------------------------------------------------------
# Wall-clock deadline of one delivery attempt, in seconds: connecting plus reading the whole answer (Standard Webhooks
# receivers should answer fast). Keep it well under the task timeout (Q_TIMEOUT).
WEBHOOKS_TIMEOUT = env_int("WEBHOOKS_TIMEOUT", 15)
# Server-side request forgery guard: endpoint URLs resolving to loopback/private/link-local addresses are refused,
# and plain http is refused, unless these are set (development and tests only).
WEBHOOKS_ALLOW_PRIVATE_URLS = env_bool("WEBHOOKS_ALLOW_PRIVATE_URLS")
WEBHOOKS_ALLOW_HTTP = env_bool("WEBHOOKS_ALLOW_HTTP")
