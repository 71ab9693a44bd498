"""Reads of the integrations' tables, with their joins applied."""

from django.db.models import Prefetch, QuerySet

from .models import WorkflowRun, WorkflowStep


def workflow_run_list() -> QuerySet[WorkflowRun]:
    """Workflow runs with their customer, for lists (the REST API)."""
    return WorkflowRun.objects.select_related("customer")


def workflow_run_detail_list() -> QuerySet[WorkflowRun]:
    """Workflow runs with their steps in the order they ran."""
    steps = WorkflowStep.objects.order_by("started_at", "id")
    return workflow_run_list().prefetch_related(Prefetch("steps", queryset=steps))
