"""Reads of broadcasts: the preview of each variant, the audience a send would reach, and the figures of a sent one.

The figures are counted from the broadcast's queue items (one row per email, with its first delivery, open, click,
bounce and complaint written by automations' tracking service), in one query whatever the audience size. Opens are
shown but never decide anything: Apple Mail Privacy Protection and image proxies open emails by themselves.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q

from automations.models import QueueStatus
from automations.render_context import customer_context, links_context, sample_context, subscription_context
from automations.rendering import render_email
from automations.services.suppressions import unsubscribe_url
from customers.models import Customer

from .audience import segment_audience
from .broadcast_models import Broadcast, BroadcastVariant

OPENS_CAVEAT = (
    "Opens are unreliable: Apple Mail Privacy Protection and image proxies open emails by themselves. The A/B "
    "winner is chosen by clicks."
)


def preview_context(*, customer: Customer | None) -> dict:
    """What a preview or a staff test renders with: the sample customer, or a real one's data (links that
    unsubscribe nobody: a staff member clicking them must not change the customer's choices)."""
    if customer is None:
        return sample_context()
    return {
        **sample_context(),
        "customer": customer_context(customer),
        "subscription": subscription_context(customer=customer, event_payload={}) or sample_context()["subscription"],
        "unsubscribe_url": unsubscribe_url(email=customer.email),
        **links_context(),
    }


@dataclass(frozen=True)
class VariantPreview:
    label: str
    subject: str
    html: str
    text: str


def broadcast_preview(*, broadcast: Broadcast, customer: Customer | None) -> list[VariantPreview]:
    """Each variant rendered for `customer` (or the sample customer). Raises jinja2.TemplateError when one cannot."""
    context = preview_context(customer=customer)
    previews = []
    for variant in broadcast.variants.select_related("template").order_by("label"):
        rendered = render_email(template=variant.template, context=context)
        previews.append(VariantPreview(variant.label, rendered.subject, rendered.html, rendered.text))
    return previews


def broadcast_audience(*, broadcast: Broadcast, at: datetime):
    """Whom the broadcast would go to at `at` (segment_audience, with its topic and cap override): the one definition
    its count and its queuing share. Raises marketing.selectors.SegmentDefinitionError."""
    return segment_audience(
        segment=broadcast.segment, topic=broadcast.topic, at=at, ignore_frequency_cap=broadcast.ignore_frequency_cap
    )


def broadcast_audience_count(*, broadcast: Broadcast, at: datetime) -> int:
    return broadcast_audience(broadcast=broadcast, at=at).count()


FIGURES = (
    "recipients",
    "queued",
    "deferred",
    "held",
    "sent",
    "delivered",
    "opened",
    "human_opened",
    "clicked",
    "bounced",
    "complained",
    "unsubscribed",
    "skipped",
    "blocked",
    "failed",
    "unconfirmed",
)


def _figure_counts(prefix: str) -> dict:
    """Count(...) per figure, over the queue items reached through `prefix`."""
    item = f"{prefix}queue_item__"
    status = f"{item}status"
    return {
        "recipients": Count(f"{prefix}pk"),
        "queued": Count(f"{prefix}pk", filter=Q(**{status: QueueStatus.PENDING})),
        "deferred": Count(
            f"{prefix}pk", filter=Q(**{status: QueueStatus.PENDING}) & ~Q(**{f"{item}send_gate_note": ""})
        ),
        "held": Count(f"{prefix}pk", filter=Q(**{status: QueueStatus.PAUSED})),
        "sent": Count(f"{prefix}pk", filter=Q(**{f"{item}sent_at__isnull": False})),
        "delivered": Count(f"{prefix}pk", filter=Q(**{f"{item}delivered_at__isnull": False})),
        "opened": Count(f"{prefix}pk", filter=Q(**{f"{item}opened_at__isnull": False})),
        "human_opened": Count(f"{prefix}pk", filter=Q(**{f"{item}human_opened_at__isnull": False})),
        "clicked": Count(f"{prefix}pk", filter=Q(**{f"{item}clicked_at__isnull": False})),
        "bounced": Count(f"{prefix}pk", filter=Q(**{f"{item}bounced_at__isnull": False})),
        "complained": Count(f"{prefix}pk", filter=Q(**{f"{item}complained_at__isnull": False})),
        "unsubscribed": Count(f"{prefix}pk", filter=Q(**{f"{item}unsubscribed_at__isnull": False})),
        "skipped": Count(f"{prefix}pk", filter=Q(**{status: QueueStatus.CANCELLED})),
        "blocked": Count(f"{prefix}pk", filter=Q(**{status: QueueStatus.SUPPRESSED})),
        "failed": Count(f"{prefix}pk", filter=Q(**{status: QueueStatus.FAILED})),
        "unconfirmed": Count(f"{prefix}pk", filter=Q(**{status: QueueStatus.UNCONFIRMED})),
    }


def _rate(part: int, whole: int) -> float | None:
    return None if not whole else part / whole


@dataclass
class FigureRow:
    """One variant's figures (or the totals, label ""), with the rates; a rate is None when its base is zero."""

    label: str
    recipients: int = 0
    queued: int = 0
    deferred: int = 0
    held: int = 0
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    human_opened: int = 0
    clicked: int = 0
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0
    skipped: int = 0
    blocked: int = 0
    failed: int = 0
    unconfirmed: int = 0
    template_name: str = ""
    winner: bool = False

    @property
    def delivery_rate(self) -> float | None:
        return _rate(self.delivered, self.sent)

    @property
    def click_rate(self) -> float | None:
        """Unique clicks per delivered email: what decides an A/B test."""
        return _rate(self.clicked, self.delivered)

    @property
    def bounce_rate(self) -> float | None:
        return _rate(self.bounced, self.sent)

    @property
    def complaint_rate(self) -> float | None:
        return _rate(self.complained, self.delivered)


@dataclass
class BroadcastFigures:
    totals: FigureRow
    variants: list[FigureRow] = field(default_factory=list)
    opens_caveat: str = OPENS_CAVEAT


def broadcast_figures(*, broadcast: Broadcast) -> BroadcastFigures:
    """The broadcast's figures, in total and per variant: one query (the variants with their counts)."""
    rows = (
        BroadcastVariant.objects.filter(broadcast_id=broadcast.pk)
        .annotate(**{f"n_{name}": count for name, count in _figure_counts("recipients__").items()})
        .values("pk", "label", "template__name", *(f"n_{name}" for name in FIGURES))
        .order_by("label")
    )
    variants = [
        FigureRow(
            label=row["label"],
            template_name=row["template__name"],
            winner=row["pk"] == broadcast.winner_id,
            **{name: row[f"n_{name}"] for name in FIGURES},
        )
        for row in rows
    ]
    totals = FigureRow(label="", **{name: sum(getattr(row, name) for row in variants) for name in FIGURES})
    return BroadcastFigures(totals=totals, variants=variants)
