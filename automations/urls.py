from django.urls import path

from . import views

app_name = "automations"

urlpatterns = [
    path("email/unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
]
