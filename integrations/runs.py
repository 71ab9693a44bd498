"""Workflow runs: every run is recorded with its steps, retried with backoff when it fails, and each step goes on
the customer's timeline.

    run, created = workflow_run_create(kind=, key=, subject=, input=)   # once per key; enqueued on commit
    run_execute(run_id=)   # the task: claims the run, calls the kind's workflow with a StepRecorder

A workflow is a function `(recorder) -> str` registered with `@workflow(RunKind.X)`. It returns the outcome (shown in
the admin) or raises `RunSkipped(reason)`, or `RunNeedsReview(reason)` when only a person can tell whether an outside
call acted (the run waits for staff and is not retried); any other exception fails the run, which the retry schedule
runs again after a backoff until INTEGRATIONS_RUN_MAX_ATTEMPTS. Workflows are written so a second execution of the
same run acts only where the first did not finish (they keep their own progress in unique rows).
"""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.leases import lease_kept
from core.retry import next_attempt_at
from customers import services as customer_services
from customers.models import Customer

from .models import RunKind, RunStatus, StepOutcome, WorkflowRun, WorkflowStep

logger = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)
# A running run holds a lease (INTEGRATIONS_RUN_LEASE_SECONDS) renewed while it works (core/leases.py); the
# every-minute sweep takes a run whose lease ran out (its worker died) again. A run claimed before leases existed
# has none: it counts as lost after this long without a change.
STALE_RUNNING = timedelta(minutes=15)

TIMELINE_SOURCE = {RunKind.CONTACT_INVITE: "mautic", RunKind.VIP_COUPON: "crm"}


class RunSkipped(Exception):
    """The workflow has nothing to do for this subject (not opted in, not VIP, our own write-back...)."""


class RunNeedsReview(Exception):
    """A call with no idempotency key may have acted and there is no way to check (a Mautic email send whose answer
    was lost): acting again could do it twice, so the run stops in `needs_review` for staff and is not retried."""


Workflow = Callable[["StepRecorder"], str]
_workflows: dict[str, Workflow] = {}


def workflow(kind: str) -> Callable[[Workflow], Workflow]:
    def register(function: Workflow) -> Workflow:
        _workflows[kind] = function
        return function

    return register


@dataclass
class StepRecorder:
    run: WorkflowRun
    steps: list[str] = field(default_factory=list)

    def customer_set(self, customer: Customer) -> None:
        if self.run.customer_id != customer.pk:
            self.run.customer = customer
            WorkflowRun.objects.filter(pk=self.run.pk).update(customer=customer)

    @contextmanager
    def step(self, name: str, detail: str = "") -> Iterator["StepNote"]:
        """Record one step: ok when the block finishes, failed (and re-raised) when it raises."""
        note = StepNote(detail=detail)
        started = timezone.now()
        try:
            yield note
        except Exception as exc:
            self.record(name, StepOutcome.FAILED, note.detail, started, error=f"{type(exc).__name__}: {exc}")
            raise
        self.record(name, note.outcome, note.detail, started)

    def skip(self, name: str, detail: str) -> None:
        self.record(name, StepOutcome.SKIPPED, detail, timezone.now())

    def record(self, name: str, outcome: str, detail: str, started: datetime, *, error: str = "") -> None:
        now = timezone.now()
        step, created = WorkflowStep.objects.get_or_create(
            run=self.run,
            name=name,
            defaults={
                "outcome": outcome,
                "detail": detail[:500],
                "error": error[:5000],
                "started_at": started,
                "finished_at": now,
            },
        )
        if not created:
            WorkflowStep.objects.filter(pk=step.pk).update(
                outcome=outcome,
                detail=detail[:500],
                error=error[:5000],
                started_at=started,
                finished_at=now,
                attempts=F("attempts") + 1,
            )
        self.steps.append(name)
        if self.run.customer_id:
            summary = f"{name}: {outcome}" + (f" ({detail})" if detail else "") + (f": {error}" if error else "")
            customer_services.timeline_event_record(
                customer=self.run.customer,
                source=TIMELINE_SOURCE.get(self.run.kind, "crm"),
                source_key=f"workflow-run:{self.run.pk}:attempt-{self.run.attempts}:{name}",
                kind=f"workflow.{self.run.kind}.{name}",
                occurred_at=now,
                summary=summary,
                payload={"run_id": self.run.pk, "step": name, "outcome": outcome, "error": error[:1000]},
                object_type="integrations.workflow_run",
                object_id=str(self.run.pk),
            )


@dataclass
class StepNote:
    detail: str = ""
    outcome: str = StepOutcome.OK


def workflow_run_create(*, kind: str, key: str, subject: str, input: dict, customer=None) -> tuple[WorkflowRun, bool]:
    """Once per key; the run is enqueued after commit."""
    try:
        with transaction.atomic():
            run = WorkflowRun.objects.create(kind=kind, key=key, subject=subject, input=input, customer=customer)
    except IntegrityError:
        return WorkflowRun.objects.get(key=key), False
    transaction.on_commit(lambda: workflow_run_enqueue(run_id=run.pk))
    return run, True


def workflow_run_enqueue(*, run_id: int) -> None:
    from django_q.tasks import async_task

    async_task("integrations.tasks.workflow_run_task", run_id, task_name=f"workflow-run:{run_id}")


def _lease() -> timedelta:
    return timedelta(seconds=settings.INTEGRATIONS_RUN_LEASE_SECONDS)


def _lost(now: datetime) -> Q:
    """Running runs whose worker is gone: the lease ran out (or, claimed before leases, no change for long)."""
    return Q(status=RunStatus.RUNNING) & (
        Q(lease_expires_at__lt=now) | Q(lease_expires_at=None, updated_at__lt=now - STALE_RUNNING)
    )


def _claim(run_id: int) -> WorkflowRun | None:
    now = timezone.now()
    with transaction.atomic():
        run = (
            WorkflowRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("customer")
            .filter(pk=run_id)
            .filter(Q(status__in=[RunStatus.PENDING, RunStatus.FAILED]) | _lost(now))
            .first()
        )
        if run is None:
            return None
        if run.status == RunStatus.RUNNING:
            logger.warning(
                "Workflow run %s (%s %s) was lost with its worker; resuming it", run.pk, run.kind, run.subject
            )
        run.status = RunStatus.RUNNING
        run.attempts += 1
        run.next_attempt_at = None
        run.lease_expires_at = now + _lease()
        run.save(update_fields=["status", "attempts", "next_attempt_at", "lease_expires_at", "updated_at"])
        return run


def _lease_renew(run_id: int, attempts: int) -> bool:
    """Still ours (not finished, not taken over by a sweep after a lost lease): push the lease on."""
    return bool(
        WorkflowRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, attempts=attempts).update(
            lease_expires_at=timezone.now() + _lease()
        )
    )


def run_execute(*, run_id: int) -> str | None:
    """Run one workflow run. Returns its status afterwards, or None when it was not ours to run."""
    run = _claim(run_id)
    if run is None:
        return None
    recorder = StepRecorder(run=run)
    keep = lease_kept(
        renew=lambda: _lease_renew(run.pk, run.attempts),
        lease_seconds=settings.INTEGRATIONS_RUN_LEASE_SECONDS,
        name=f"workflow run {run.pk}",
    )
    with keep:
        try:
            outcome = _workflows[run.kind](recorder)
            status = RunStatus.SUCCEEDED
            error = ""
        except RunSkipped as skipped:
            outcome, status, error = str(skipped), RunStatus.SKIPPED, ""
        except RunNeedsReview as review:
            logger.warning("Workflow run %s (%s %s) needs staff review: %s", run.pk, run.kind, run.subject, review)
            outcome, status, error = "needs staff review", RunStatus.NEEDS_REVIEW, str(review)
        except Exception as exc:  # kept on the run, retried by the sweep, shown in the admin
            logger.warning("Workflow run %s (%s %s) failed: %s", run.pk, run.kind, run.subject, exc)
            outcome, error = "", f"{type(exc).__name__}: {exc}"
            status = RunStatus.FAILED if run.attempts < settings.INTEGRATIONS_RUN_MAX_ATTEMPTS else RunStatus.GAVE_UP
    now = timezone.now()
    run.status = status
    run.outcome = outcome[:300]
    run.last_error = error[:5000]
    run.finished_at = None if status == RunStatus.FAILED else now
    run.next_attempt_at = (
        next_attempt_at(
            run.attempts, base=timedelta(seconds=settings.INTEGRATIONS_RETRY_BASE_SECONDS), cap=MAX_BACKOFF, now=now
        )
        if status == RunStatus.FAILED
        else None
    )
    run.lease_expires_at = None
    # Only while the run is still ours: a sweep that took it over after our lease ran out records its own outcome.
    recorded = WorkflowRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, attempts=run.attempts).update(
        status=status,
        outcome=run.outcome,
        last_error=run.last_error,
        finished_at=run.finished_at,
        next_attempt_at=run.next_attempt_at,
        lease_expires_at=None,
        updated_at=now,
    )
    if not recorded:
        logger.warning("Workflow run %s was taken over by another worker; its outcome is theirs to record", run.pk)
    return status


def workflow_runs_due(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    now = now or timezone.now()
    return list(
        WorkflowRun.objects.filter(
            Q(status=RunStatus.FAILED, next_attempt_at__lte=now)
            | _lost(now)
            | Q(status=RunStatus.PENDING, created_at__lt=now - timedelta(minutes=5))
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def workflow_run_retry(*, run_ids: list[int]) -> int:
    """From the admin and the API: run failed, given-up (or reviewed) runs again now. Returns how many were; only those
    are enqueued (a running or finished run is left alone). A `needs_review` run retried before staff resolved what it
    asks about stops at the same place again."""
    with transaction.atomic():
        retried = list(
            WorkflowRun.objects.select_for_update()
            .filter(pk__in=run_ids, status__in=[RunStatus.FAILED, RunStatus.GAVE_UP, RunStatus.NEEDS_REVIEW])
            .values_list("pk", flat=True)
        )
        WorkflowRun.objects.filter(pk__in=retried).update(status=RunStatus.FAILED, next_attempt_at=timezone.now())
        for run_id in retried:
            transaction.on_commit(lambda run_id=run_id: workflow_run_enqueue(run_id=run_id))
    return len(retried)
