from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # API keys and staff who may use the admin (SPECTACULAR_SETTINGS); the split view serves Swagger UI's start-up
    # script as a file, not inline, so the Content-Security-Policy needs no 'unsafe-inline' for scripts.
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("api.urls")),
    # Each app owns its own paths, including the full prefix (billing: api/webhooks/stripe).
    path("", include("billing.urls")),
    path("", include("automations.urls")),
    path("", include("integrations.urls")),
    path("", include("support.urls")),
]

handler404 = "api.errors.not_found"
handler403 = "config.admin_site.permission_denied"
