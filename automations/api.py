"""REST resources of the automations app: rules, enrollments and the email queue (/api/v1/...);
analytics are in api_analytics.py.

Actions go through the same services as the admin: enable/disable (`rule_set_enabled`), enroll by hand
(`enrollment_start_by_hand`), retry a failed email (`queue_items_retry_now`), cancel a pending one
(`queue_items_cancel`).
"""

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import filters, generics, mixins, serializers, status, viewsets
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from api.filters import (
    ChoicesFilter,
    IdFilter,
    KnownQueryParametersBackend,
    StrictBooleanFilter,
    StrictFilterSet,
)
from api.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent, principal_of
from api.pagination import IdCursorPagination
from api.schema import documents_page_size_errors, documents_unknown_parameter_errors
from customers.models import Customer

from . import selectors
from .models import (
    EVENT_CHOICES,
    AutomationRule,
    AutomationStep,
    EmailQueueItem,
    Enrollment,
    EnrollmentStatus,
    QueueStatus,
)
from .services.queue_items import queue_items_cancel, queue_items_retry_now
from .services.rules import EnrollmentRefused, enrollment_start_by_hand, rule_set_enabled


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


# --- rules ------------------------------------------------------------------------------------------------------------


class StepSerializer(serializers.ModelSerializer):
    template = serializers.CharField(source="template.name")

    class Meta:
        model = AutomationStep
        fields = ["id", "order", "delay", "anchor", "template"]


class RuleSerializer(serializers.ModelSerializer):
    steps = StepSerializer(many=True, read_only=True)

    class Meta:
        model = AutomationRule
        fields = [
            "id",
            "name",
            "description",
            "trigger",
            "enabled",
            "reentry",
            "condition_product_ids",
            "condition_lifecycle_stages",
            "condition_vip",
            "exit_events",
            "moves_to_stage",
            "steps",
            "created_at",
            "updated_at",
        ]


class RuleFilter(StrictFilterSet):
    enabled = StrictBooleanFilter()
    trigger = django_filters.ChoiceFilter(choices=EVENT_CHOICES)

    class Meta:
        model = AutomationRule
        fields = []


@documents_unknown_parameter_errors
class RuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Automation rules (a handful: no pagination)."""

    queryset = selectors.rule_list()
    serializer_class = RuleSerializer
    pagination_class = None
    filterset_class = RuleFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, KnownQueryParametersBackend]


class RuleEnabledView(APIView):
    """POST .../enable or .../disable. Disabling stops new enrollments; running ones carry on."""

    enabled: bool = True
    required_permissions = {"POST": ["automations.change_automationrule"]}

    @extend_schema(request=None, responses=RuleSerializer, parameters=[IDEMPOTENCY_KEY_PARAMETER])
    @idempotent
    def post(self, request, pk: int):
        get_object_or_404(AutomationRule.objects.filter(sends_broadcast=False).only("pk"), pk=pk)
        rule = rule_set_enabled(rule_id=pk, enabled=self.enabled)
        return Response(RuleSerializer(selectors.rule_list().get(pk=rule.pk)).data)


# --- enrollments ------------------------------------------------------------------------------------------------------


class EnrollmentSerializer(serializers.ModelSerializer):
    rule_name = serializers.CharField(source="rule.name", read_only=True)

    class Meta:
        model = Enrollment
        fields = [
            "id",
            "rule",
            "rule_name",
            "customer",
            "subscription_id",
            "status",
            "exit_reason",
            "enrolled_at",
            "completed_at",
            "exited_at",
        ]


class EnrollInputSerializer(serializers.Serializer):
    customer = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="The customer's id.")


class RuleEnrollView(APIView):
    """POST: enroll a customer in this rule by hand. 201 with the enrollment; 409 when the rule is disabled, the
    customer has no email, or the re-entry policy refuses (already enrolled)."""

    required_permissions = {"POST": ["automations.add_enrollment"]}

    @extend_schema(
        request=EnrollInputSerializer, responses={201: EnrollmentSerializer}, parameters=[IDEMPOTENCY_KEY_PARAMETER]
    )
    @idempotent
    def post(self, request, pk: int):
        rule = get_object_or_404(AutomationRule.objects.filter(sends_broadcast=False), pk=pk)
        data = EnrollInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = get_object_or_404(Customer, pk=data.validated_data["customer"])
        try:
            enrollment = enrollment_start_by_hand(
                rule=rule, customer=customer, reason=f"API ({principal_of(request)}, {request.user})"
            )
        except EnrollmentRefused as exc:
            raise Conflict(str(exc)) from None
        return Response(EnrollmentSerializer(enrollment).data, status=status.HTTP_201_CREATED)


class EnrollmentFilter(StrictFilterSet):
    status = ChoicesFilter(choices=EnrollmentStatus.choices)
    rule = IdFilter(field_name="rule_id")

    class Meta:
        model = Enrollment
        fields = []


@documents_page_size_errors
class CustomerEnrollmentsView(generics.ListAPIView):
    """The customer's enrollments in automation rules, newest first."""

    serializer_class = EnrollmentSerializer
    filterset_class = EnrollmentFilter
    pagination_class = IdCursorPagination
    queryset = Enrollment.objects.none()

    def get_queryset(self):
        customer = get_object_or_404(Customer.objects.only("pk"), pk=self.kwargs["customer_id"])
        return selectors.enrollment_list_for_customer(customer_id=customer.pk)


# --- the email queue --------------------------------------------------------------------------------------------------


class QueueItemSerializer(serializers.ModelSerializer):
    rule = serializers.IntegerField(source="enrollment.rule_id", read_only=True)
    rule_name = serializers.CharField(source="enrollment.rule.name", read_only=True)
    template = serializers.CharField(source="step.template.name", read_only=True)

    class Meta:
        model = EmailQueueItem
        fields = [
            "id",
            "customer",
            "enrollment",
            "rule",
            "rule_name",
            "step",
            "template",
            "recipient",
            "status",
            "scheduled_at",
            "next_attempt_at",
            "attempts",
            "last_error",
            "sent_at",
            "delivered_at",
            "opened_at",
            "clicked_at",
            "bounced_at",
            "complained_at",
            "unsubscribed_at",
            "created_at",
            "updated_at",
        ]


class QueueItemFilter(StrictFilterSet):
    status = ChoicesFilter(choices=QueueStatus.choices)
    rule = IdFilter(field_name="enrollment__rule_id")
    customer = IdFilter(field_name="customer_id")

    class Meta:
        model = EmailQueueItem
        fields = []


@documents_page_size_errors
class QueueItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = selectors.queue_item_list()
    serializer_class = QueueItemSerializer
    filterset_class = QueueItemFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, filters.OrderingFilter]
    ordering_fields = ["id"]
    pagination_class = IdCursorPagination


class QueueItemActionView(APIView):
    """POST .../retry (a failed email, due now) or .../cancel (a pending one). 409 when the item is in another state."""

    action_name = "retry"
    required_permissions = {"POST": ["automations.change_emailqueueitem"]}

    @extend_schema(request=None, responses=QueueItemSerializer, parameters=[IDEMPOTENCY_KEY_PARAMETER])
    @idempotent
    def post(self, request, pk: int):
        item = get_object_or_404(EmailQueueItem.objects.only("pk", "status"), pk=pk)
        if self.action_name == "retry":
            changed = queue_items_retry_now(item_ids=[item.pk])
            refused = "Only a failed email can be retried; this one is {status}."
        else:
            changed = queue_items_cancel(item_ids=[item.pk], reason=f"Cancelled through the API by {request.user}")
            refused = "Only a pending email can be cancelled; this one is {status}."
        if not changed:
            raise Conflict(refused.format(status=item.status))
        return Response(QueueItemSerializer(selectors.queue_item_list().get(pk=item.pk)).data)
