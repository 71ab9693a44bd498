"""The benchmark's URL conf: the real project, plus bare DRF list views of the same tables as the baseline.

A bare view has no authentication, permissions, throttling or filters: a ModelSerializer of the same columns the
real endpoint returns, over a cursor page. What the real endpoint costs on top of it is what the API layer adds
(the analytics document has no list of its own; its baseline is a plain page of the queue items it counts).
"""

from django.urls import include, path
from rest_framework import generics, serializers

from api.pagination import IdCursorPagination
from automations.models import EmailQueueItem
from customers.api import CustomerSerializer, TimelineEventSerializer
from customers.models import Customer, TimelineEvent


def bare_list(model, fields):
    serializer = type(
        f"Bare{model.__name__}Serializer",
        (serializers.ModelSerializer,),
        {"Meta": type("Meta", (), {"model": model, "fields": fields})},
    )
    return generics.ListAPIView.as_view(
        queryset=model.objects.all(),
        serializer_class=serializer,
        pagination_class=IdCursorPagination,
        authentication_classes=[],
        permission_classes=[],
        throttle_classes=[],
        filter_backends=[],
    )


urlpatterns = [
    path("bare/customers/", bare_list(Customer, CustomerSerializer.Meta.fields)),
    path("bare/timeline/", bare_list(TimelineEvent, TimelineEventSerializer.Meta.fields)),
    path("bare/queue-items/", bare_list(EmailQueueItem, ["id", "status", "sent_at", "opened_at", "clicked_at"])),
    path("", include("config.urls")),
]
