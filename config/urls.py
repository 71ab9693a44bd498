from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .health import healthz

admin.site.site_header = "ModReady back-office"
admin.site.site_title = "ModReady back-office"
admin.site.index_title = "Customer operations"


urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # Authenticated only (SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]); the docs page's files come from the sidecar.
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("api.urls")),
    # Each app owns its own paths, including the full prefix (billing: api/webhooks/stripe).
    path("", include("billing.urls")),
    path("", include("automations.urls")),
    path("", include("integrations.urls")),
    path("", include("support.urls")),
]

handler404 = "api.errors.not_found"
