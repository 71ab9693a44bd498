"""REST resources of the billing app: the CRM's subscriptions (/api/v1/subscriptions/). Reads only: Stripe is the
source of truth and billing writes these rows from it."""

import django_filters
from django.db.models import Q
from rest_framework import filters, mixins, serializers, viewsets

from api.filters import ChoicesFilter, IdFilter, StrictBooleanFilter, StrictFilterSet, TextFilter
from api.pagination import IdCursorPagination
from api.schema import documents_page_size_errors

from .models import Subscription, SubscriptionStatus
from .selectors import subscription_list


class SubscriptionSerializer(serializers.ModelSerializer):
    customer_email = serializers.CharField(source="customer.email", read_only=True)

    class Meta:
        model = Subscription
        fields = [
            "id",
            "customer",
            "customer_email",
            "stripe_subscription_id",
            "product_id",
            "product_name",
            "price_id",
            "status",
            "amount",
            "currency",
            "interval",
            "interval_count",
            "quantity",
            "current_period_start",
            "current_period_end",
            "trial_start",
            "trial_end",
            "cancel_at_period_end",
            "cancel_at",
            "canceled_at",
            "ended_at",
            "cancellation_reason",
            "cancellation_feedback",
            "stripe_created",
            "created_at",
            "updated_at",
        ]


class SubscriptionDetailSerializer(SubscriptionSerializer):
    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "cancellation_comment", "metadata"]


class SubscriptionFilter(StrictFilterSet):
    status = ChoicesFilter(choices=SubscriptionStatus.choices)
    product = TextFilter(field_name="product_id")
    customer = IdFilter(field_name="customer_id")
    cancel_scheduled = StrictBooleanFilter(
        method="filter_cancel_scheduled", help_text="Set to end at period end or at a date, and not ended yet."
    )
    cancellation_reason = TextFilter()

    class Meta:
        model = Subscription
        fields = []

    def filter_cancel_scheduled(self, queryset, name, value):
        scheduled = (Q(cancel_at_period_end=True) | Q(cancel_at__isnull=False)) & Q(ended_at__isnull=True)
        return queryset.filter(scheduled) if value else queryset.exclude(scheduled)


@documents_page_size_errors
class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = subscription_list()
    filterset_class = SubscriptionFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, filters.OrderingFilter]
    ordering_fields = ["id"]
    pagination_class = IdCursorPagination

    def get_serializer_class(self):
        return SubscriptionDetailSerializer if self.action == "retrieve" else SubscriptionSerializer
