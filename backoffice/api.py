"""The customer REST resource (/api/v1/customers/), composed: the customer's own fields (customers/api.py) with
their subscriptions (billing), open tickets (support) and the suppression state of their address (automations), each
read through its app's selectors, and filters on subscriptions. The routes are collected by `config/api_urls.py`.
"""

import django_filters
from django.db.models import Exists, OuterRef
from drf_spectacular.utils import extend_schema_field
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import filters, mixins, serializers, viewsets

from api.filters import (
    ChoicesFilter,
    IndexedSearchFilter,
    RequiredTextFilter,
    StrictBooleanFilter,
    StrictFilterSet,
    TextFilter,
    UtcDateTimeFilter,
)
from api.pagination import IdCursorPagination
from api.schema import documents_page_size_errors
from automations.selectors import suppression_state_for_email
from billing.models import SubscriptionStatus
from billing.selectors import subscription_exists_filter, subscription_list_for_customer
from customers.api import CustomerSerializer
from customers.lifecycle import Stage
from customers.models import Customer
from customers.selectors import customer_list
from support.models import TicketStatus
from support.selectors import tickets_open_for_customer


class CustomerSubscriptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    stripe_subscription_id = serializers.CharField()
    product_id = serializers.CharField()
    product_name = serializers.CharField()
    status = serializers.ChoiceField(choices=SubscriptionStatus.choices)
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    interval = serializers.CharField()
    current_period_end = serializers.DateTimeField(allow_null=True)
    cancel_at_period_end = serializers.BooleanField()
    canceled_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)


class OpenTicketSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=TicketStatus.choices)
    category = serializers.CharField()
    subject = serializers.CharField()
    opened_at = serializers.DateTimeField()


class SuppressionStateSerializer(serializers.Serializer):
    reasons = serializers.ListField(child=serializers.CharField(), help_text="Why the address is suppressed, if it is.")
    marketing_allowed = serializers.BooleanField(help_text="Opted in and not suppressed for marketing.")
    transactional_allowed = serializers.BooleanField(help_text="Not suppressed by a bounce, complaint or staff.")


class CustomerDetailSerializer(CustomerSerializer):
    metadata = serializers.JSONField()
    subscriptions = serializers.SerializerMethodField()
    open_tickets = serializers.SerializerMethodField()
    suppression = serializers.SerializerMethodField()

    class Meta(CustomerSerializer.Meta):
        fields = [*CustomerSerializer.Meta.fields, "metadata", "subscriptions", "open_tickets", "suppression"]

    @extend_schema_field(CustomerSubscriptionSerializer(many=True))
    def get_subscriptions(self, customer):
        return CustomerSubscriptionSerializer(subscription_list_for_customer(customer=customer), many=True).data

    @extend_schema_field(OpenTicketSerializer(many=True))
    def get_open_tickets(self, customer):
        return OpenTicketSerializer(tickets_open_for_customer(customer=customer), many=True).data

    @extend_schema_field(SuppressionStateSerializer)
    def get_suppression(self, customer):
        return SuppressionStateSerializer(
            suppression_state_for_email(email=customer.email, opt_in_confirmed=customer.opt_in_confirmed)
        ).data


class CustomerFilter(StrictFilterSet):
    email = RequiredTextFilter(
        field_name="email", lookup_expr="iexact", help_text="The customer with this email (exact, any letter case)."
    )
    stage = ChoicesFilter(field_name="lifecycle_stage", choices=Stage.choices)
    vip = StrictBooleanFilter(field_name="vip_status")
    opt_in = StrictBooleanFilter(field_name="opt_in_confirmed")
    product = TextFilter(method="filter_product", help_text="Has a subscription of this product id.")
    subscription_status = ChoicesFilter(
        method="filter_subscription_status",
        choices=SubscriptionStatus.choices,
        help_text="Has a subscription in one of these statuses.",
    )
    created_since = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    changed_since = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Customer
        fields = []

    def filter_product(self, queryset, name, value):
        return queryset.filter(Exists(subscription_exists_filter(customer=OuterRef("pk"), product_id=value)))

    def filter_subscription_status(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(Exists(subscription_exists_filter(customer=OuterRef("pk"), statuses=value)))


@documents_page_size_errors
@extend_validation_errors(["invalid"], field_name="email")
class CustomerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Customers, newest first. `search` matches email and name (contains) and the Stripe, Discord, Mautic and
    EspoCRM ids (exact)."""

    queryset = customer_list()
    filterset_class = CustomerFilter
    filter_backends = [
        django_filters.rest_framework.DjangoFilterBackend,
        IndexedSearchFilter,
        filters.OrderingFilter,
    ]
    search_fields = [
        "email",
        "name",
        "=stripe_customer_id",
        "=discord_user_id",
        "=mautic_contact_id",
        "=espocrm_lead_id",
    ]
    ordering_fields = ["id"]
    pagination_class = IdCursorPagination

    def get_serializer_class(self):
        return CustomerDetailSerializer if self.action == "retrieve" else CustomerSerializer
