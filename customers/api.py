"""REST resources of the customers app: a customer's fields, timeline and stage history (/api/v1/customers/...).

Reads only; every write to a customer goes through `customers.services` from the places that own the change (billing,
automations, support). The customer resource itself, which adds subscriptions, open tickets and the suppression state
to these fields, is composed in backoffice/api.py. The routes are collected by `config/api_urls.py`.
"""

from django.shortcuts import get_object_or_404
from rest_framework import generics, serializers

from api.filters import ChoicesFilter, StrictFilterSet, TextFilter, UtcDateTimeFilter
from api.pagination import RecentFirstCursorPagination
from api.schema import documents_page_size_errors

from .models import Customer, StageTransition, TimelineEvent, TimelineSource
from .selectors import customer_stage_history_queryset, customer_timeline_queryset


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "id",
            "email",
            "name",
            "lifecycle_stage",
            "stage_changed_at",
            "vip_status",
            "opt_in_confirmed",
            "stripe_customer_id",
            "discord_user_id",
            "mautic_contact_id",
            "espocrm_lead_id",
            "created_at",
            "updated_at",
        ]


class TimelineEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = TimelineEvent
        fields = ["id", "source", "kind", "occurred_at", "summary", "payload", "object_type", "object_id"]


class TimelineFilter(StrictFilterSet):
    source = ChoicesFilter(choices=TimelineSource.choices)
    kind = TextFilter()
    since = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="gte")

    class Meta:
        model = TimelineEvent
        fields = []


@documents_page_size_errors
class CustomerTimelineView(generics.ListAPIView):
    """Everything that happened to one customer, newest first."""

    serializer_class = TimelineEventSerializer
    filterset_class = TimelineFilter
    pagination_class = RecentFirstCursorPagination
    queryset = TimelineEvent.objects.none()  # the model, for permissions and the schema

    def get_queryset(self):
        customer = get_object_or_404(Customer.objects.only("pk"), pk=self.kwargs["customer_id"])
        return customer_timeline_queryset(customer=customer)


class StageTransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = StageTransition
        fields = ["id", "from_stage", "to_stage", "cause", "occurred_at", "forced"]


@documents_page_size_errors
class CustomerStageHistoryView(generics.ListAPIView):
    """The customer's lifecycle moves, newest first."""

    serializer_class = StageTransitionSerializer
    pagination_class = RecentFirstCursorPagination
    filter_backends = []
    queryset = StageTransition.objects.none()

    def get_queryset(self):
        customer = get_object_or_404(Customer.objects.only("pk"), pk=self.kwargs["customer_id"])
        return customer_stage_history_queryset(customer=customer)
