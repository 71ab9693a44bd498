"""REST resources of the marketing app: segments (/api/v1/segments/).

The list gives each segment's definition; the detail adds who it reaches now (the count is marketing.audience's, the
one a send uses); `members/` pages through those customers. A segment may be created with its conditions (checked as
the admin checks them: a bad one is a 400 naming it, and nothing is saved). Routes: config/api_urls.py.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from api.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from api.pagination import IdCursorPagination
from api.schema import documents_page_size_errors
from customers.api import CustomerSerializer
from customers.models import Customer

from .audience import segment_audience, segment_summary
from .conditions import condition_clean, condition_labels, condition_text
from .models import ConditionField, Match, Operator, Segment
from .selectors import SegmentDefinitionError, segment_list
from .services import segment_create

VALUE_HELP = (
    'A list (["active", "at_risk"]; template and rule ids as numbers), a number of days (30), two dates '
    '({"since": "2026-01-01", "until": "2026-03-31"}), or null for yes / no.'
)


class SegmentUnusable(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "segment_unusable"


class ConditionSerializer(serializers.Serializer):
    field = serializers.ChoiceField(choices=ConditionField.choices)
    operator = serializers.ChoiceField(choices=Operator.choices)
    value = serializers.JSONField(allow_null=True, help_text=VALUE_HELP)
    description = serializers.SerializerMethodField(help_text="The condition in words.")

    def get_description(self, condition) -> str:
        # Template and rule names are read once per field for a whole page, not once per condition.
        labels = self.context.setdefault("condition_labels", {})
        if condition.field not in labels:
            labels[condition.field] = condition_labels(condition.field)
        return condition_text(
            field=condition.field, operator=condition.operator, value=condition.value, labels=labels[condition.field]
        )


class ConditionInputSerializer(serializers.Serializer):
    field = serializers.ChoiceField(choices=ConditionField.choices)
    operator = serializers.ChoiceField(choices=Operator.choices)
    value = serializers.JSONField(allow_null=True, help_text=VALUE_HELP)

    def validate(self, attrs):
        try:
            attrs["value"] = condition_clean(field=attrs["field"], operator=attrs["operator"], value=attrs["value"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs


class SegmentSerializer(serializers.ModelSerializer):
    conditions = ConditionSerializer(many=True, read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Segment
        fields = ["id", "name", "description", "match", "conditions", "created_by", "created_at", "updated_at"]


class SegmentDetailSerializer(SegmentSerializer):
    evaluated_at = serializers.SerializerMethodField()
    audience_count = serializers.SerializerMethodField(
        help_text="Customers a marketing email to the segment would go to now (after consent and suppressions); "
        "null when the segment cannot be evaluated."
    )
    matching_count = serializers.SerializerMethodField(
        help_text="Customers matching the conditions, before consent and suppressions."
    )
    problem = serializers.SerializerMethodField(help_text="Why the segment cannot be evaluated; empty when it can.")

    class Meta(SegmentSerializer.Meta):
        fields = [*SegmentSerializer.Meta.fields, "evaluated_at", "audience_count", "matching_count", "problem"]

    def _summary(self, segment):
        if "summary" not in self.context:
            self.context["at"] = timezone.now()
            self.context["summary"] = segment_summary(segment=segment, at=self.context["at"], sample_size=0)
        return self.context["summary"]

    def get_evaluated_at(self, segment) -> str:
        self._summary(segment)
        return serializers.DateTimeField().to_representation(self.context["at"])

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_audience_count(self, segment):
        summary = self._summary(segment)
        return None if summary.problem else summary.audience

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_matching_count(self, segment):
        summary = self._summary(segment)
        return None if summary.problem else summary.matching

    def get_problem(self, segment) -> str:
        return self._summary(segment).problem


class SegmentInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    match = serializers.ChoiceField(choices=Match.choices, default=Match.ALL)
    conditions = ConditionInputSerializer(many=True, max_length=50)

    def validate_name(self, name: str) -> str:
        if Segment.objects.filter(name=name).exists():
            raise serializers.ValidationError("A segment with this name exists already.", code="unique")
        return name


@documents_page_size_errors
class SegmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Segments, newest first, with their conditions; the detail also counts who each reaches now."""

    queryset = segment_list()
    pagination_class = IdCursorPagination

    def get_queryset(self):
        return segment_list()

    def get_serializer_class(self):
        return SegmentDetailSerializer if self.action == "retrieve" else SegmentSerializer

    @extend_schema(
        request=SegmentInputSerializer,
        responses={201: SegmentDetailSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
    )
    @idempotent
    def create(self, request):
        data = SegmentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            segment = segment_create(**data.validated_data, created_by=request.user)
        except (DjangoValidationError, IntegrityError) as exc:
            messages = exc.messages if isinstance(exc, DjangoValidationError) else ["This name is taken."]
            raise serializers.ValidationError({"name": messages}) from None
        segment = segment_list().get(pk=segment.pk)
        return Response(SegmentDetailSerializer(segment).data, status=status.HTTP_201_CREATED)


@documents_page_size_errors
class SegmentMembersView(generics.ListAPIView):
    """The customers a marketing email to the segment would go to now (the detail's `audience_count`), newest id
    first. Needs the segment's and the customers' view permissions."""

    serializer_class = CustomerSerializer
    pagination_class = IdCursorPagination
    queryset = Customer.objects.none()  # the model, for the schema
    required_permissions = {"GET": ["marketing.view_segment", "customers.view_customer"]}

    def get_queryset(self):
        segment = get_object_or_404(segment_list(), pk=self.kwargs["pk"])
        try:
            return segment_audience(segment=segment, at=timezone.now())
        except SegmentDefinitionError as exc:
            raise SegmentUnusable(f"This segment cannot be evaluated: {exc}") from None
