from django.contrib import admin
from django.db import connection
from django.http import JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView


def healthz(request):
    """For load balancers: the process answers and the database is reachable."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # Staff only (SPECTACULAR_SETTINGS); the split view serves Swagger UI's start-up script as a file, not inline,
    # so the Content-Security-Policy needs no 'unsafe-inline' for scripts.
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Each app owns its own paths, including the full prefix (billing: api/webhooks/stripe).
    path("", include("billing.urls")),
    path("", include("automations.urls")),
]
