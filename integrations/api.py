"""REST resources of the integrations app: workflow runs and their steps (/api/v1/workflow-runs/).

Reads, and one action: retry a failed run through `integrations.runs.workflow_run_retry`, the service the admin's
retry action calls, with the permission that action checks (`integrations.change_workflowrun`).
"""

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import filters, mixins, serializers, status, viewsets
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from api.filters import ChoicesFilter, IdFilter, StrictFilterSet, TextFilter, UtcDateTimeFilter
from api.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from api.pagination import IdCursorPagination
from api.schema import documents_page_size_errors

from . import runs
from .models import RunKind, RunStatus, WorkflowRun, WorkflowStep
from .selectors import workflow_run_detail_list, workflow_run_list


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class WorkflowRunSerializer(serializers.ModelSerializer):
    customer_email = serializers.EmailField(source="customer.email", read_only=True, allow_null=True)

    class Meta:
        model = WorkflowRun
        fields = [
            "id",
            "kind",
            "status",
            "subject",
            "customer",
            "customer_email",
            "outcome",
            "attempts",
            "last_error",
            "next_attempt_at",
            "created_at",
            "updated_at",
            "finished_at",
        ]


class WorkflowStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkflowStep
        fields = ["id", "name", "outcome", "detail", "error", "attempts", "started_at", "finished_at"]


class WorkflowRunDetailSerializer(WorkflowRunSerializer):
    steps = WorkflowStepSerializer(many=True, read_only=True, help_text="In the order they ran (the last attempt's).")

    class Meta(WorkflowRunSerializer.Meta):
        fields = [*WorkflowRunSerializer.Meta.fields, "key", "input", "steps"]


class WorkflowRunFilter(StrictFilterSet):
    kind = ChoicesFilter(choices=RunKind.choices)
    status = ChoicesFilter(choices=RunStatus.choices)
    customer = IdFilter(field_name="customer_id")
    subject = TextFilter(help_text="Exact: `mautic-contact:<id>` or a Stripe checkout session id (`cs_...`).")
    since = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte", help_text="Created at or after.")

    class Meta:
        model = WorkflowRun
        fields = []


@documents_page_size_errors
class WorkflowRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs of the crowdfunding workflows, newest first; the detail has the steps and the run's input."""

    queryset = workflow_run_list()
    filterset_class = WorkflowRunFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, filters.OrderingFilter]
    ordering_fields = ["id"]
    pagination_class = IdCursorPagination

    def get_queryset(self):
        return workflow_run_detail_list() if self.action == "retrieve" else workflow_run_list()

    def get_serializer_class(self):
        return WorkflowRunDetailSerializer if self.action == "retrieve" else WorkflowRunSerializer


class WorkflowRunRetryView(APIView):
    """POST: run a failed (or given-up) run again now, in a task; the answer is the run as queued. 409 when the run is
    in another state."""

    required_permissions = {"POST": ["integrations.change_workflowrun"]}

    @extend_schema(request=None, responses=WorkflowRunDetailSerializer, parameters=[IDEMPOTENCY_KEY_PARAMETER])
    @idempotent
    def post(self, request, pk: int):
        run = get_object_or_404(WorkflowRun.objects.only("pk", "status"), pk=pk)
        if not runs.workflow_run_retry(run_ids=[run.pk]):
            raise Conflict(f"Only a failed run can be retried; this one is {run.status}.")
        return Response(WorkflowRunDetailSerializer(workflow_run_detail_list().get(pk=run.pk)).data)
