from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .health import healthz

urlpatterns = [
    # A new staff member chooses their password from the link in their welcome email (config/staff_accounts.py).
    path(
        "staff/password/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(success_url=reverse_lazy("password_reset_complete")),
        name="password_reset_confirm",
    ),
    path("staff/password/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # API keys and staff who may use the admin (SPECTACULAR_SETTINGS); the split view serves Swagger UI's start-up
    # script as a file, not inline, so the Content-Security-Policy needs no 'unsafe-inline' for scripts.
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("config.api_urls")),
    # Each app owns its own paths, including the full prefix (billing: api/webhooks/stripe).
    path("", include("billing.urls")),
    path("", include("automations.urls")),
    path("", include("integrations.urls")),
    path("", include("support.urls")),
]

handler404 = "api.errors.not_found"
handler403 = "config.admin_site.permission_denied"
