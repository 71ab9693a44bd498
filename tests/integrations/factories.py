"""Factories for integrations: workflow runs (queued by default) and their steps, and stored incoming webhook
deliveries."""

import factory
from django.utils import timezone

from integrations.models import InboundWebhook, RunKind, WorkflowRun, WorkflowStep


class WorkflowRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkflowRun

    kind = RunKind.CONTACT_INVITE
    key = factory.Sequence(lambda n: f"test:{n}")
    subject = factory.Sequence(lambda n: f"mautic-contact:{n}")


class WorkflowStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkflowStep

    run = factory.SubFactory(WorkflowRunFactory)
    name = factory.Sequence(lambda n: f"step.{n}")
    outcome = "ok"
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.SelfAttribute("started_at")


class InboundWebhookFactory(factory.django.DjangoModelFactory):
    """A delivery an outside system posted to us (integrations.InboundWebhook), stored as received."""

    class Meta:
        model = InboundWebhook

    provider = "mautic"
    dedupe_key = factory.Sequence(lambda n: f"delivery:{n}")
    body = b"{}"
