from django.urls import include, path

from . import views

app_name = "automations"

urlpatterns = [
    path("email/unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
    # Resend's tracking webhook: anymail's view at anymail/resend/tracking/ (Svix signature checked there).
    path("anymail/", include("anymail.urls")),
]
