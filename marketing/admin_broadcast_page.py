"""What the broadcast page shows: its state and the buttons that apply to it, who it would reach now, the progress
figures (marketing.broadcast_figures) in total and per A/B variant, the guard's banner, the A/B note and the audit.
Reads only; the buttons post to marketing.admin_broadcast_actions."""

from dataclasses import dataclass

from django.utils import timezone

from .broadcast_admin_forms import CapOverrideForm, CustomerChoiceForm, PauseForm, ScheduleForm
from .broadcast_figures import broadcast_audience_count, broadcast_figures
from .broadcast_models import Broadcast, BroadcastStatus
from .selectors import SegmentDefinitionError

AUDIT_SHOWN = 50
OPENS_UNRELIABLE = (
    "Opens are not reliable: Apple Mail Privacy Protection and image proxies open emails by themselves, so an open "
    "does not mean a person read it. The A/B winner is chosen on unique clicks instead."
)

# (attribute of a figures row, column heading, what it counts)
FIGURE_COLUMNS = (
    ("recipients", "Recipients", "Customers this broadcast queued an email for (one each, ever)."),
    ("queued", "Queued", "Waiting to go out (the deferred ones included)."),
    ("deferred", "Deferred", "Held back by the frequency cap or quiet hours until the next allowed moment."),
    ("held", "Held", "Held while the broadcast is paused."),
    ("sent", "Sent", "Accepted by the email provider."),
    ("delivered", "Delivered", "Reported delivered by the recipient's mail server."),
    ("opened", "Opened (unreliable)", OPENS_UNRELIABLE),
    ("clicked", "Clicked", "Recipients who clicked a link (unique clicks)."),
    ("bounced", "Bounced", "Hard bounces: the address does not exist."),
    ("complained", "Complained", "Marked as spam by the recipient."),
    ("unsubscribed", "Unsubscribed", "Left the topic or all marketing from this email."),
    ("skipped", "Skipped", "Not sent, with the reason (frequency cap, quiet hours, cancelled)."),
    ("blocked", "Blocked", "Not sent: the address is suppressed or the customer withdrew consent."),
    ("failed", "Failed", "The provider refused it for good."),
)

BUTTONS_BY_STATUS = {
    BroadcastStatus.DRAFT: {"test_send", "send_now", "schedule", "cancel", "cap_override"},
    BroadcastStatus.SCHEDULED: {"test_send", "send_now", "schedule", "unschedule", "cancel", "cap_override"},
    BroadcastStatus.QUEUING: {"test_send", "pause", "cancel"},
    BroadcastStatus.SENDING: {"test_send", "pause", "cancel"},
    BroadcastStatus.TESTING: {"test_send", "pause", "cancel"},
    BroadcastStatus.PAUSED: {"test_send", "resume", "cancel"},
}
# Still moving by itself: the page reloads every minute (a plain reload shows the same).
MOVING = {BroadcastStatus.QUEUING, BroadcastStatus.SENDING, BroadcastStatus.TESTING}


@dataclass
class FigureRow:
    label: str
    cells: list[tuple[str, object]]  # (attribute, value), in FIGURE_COLUMNS' order


def figure_rows(figures) -> list[FigureRow]:
    """The total, then one row per variant when there are several."""
    rows = [FigureRow("All variants", _cells(figures.totals))]
    variants = list(figures.variants)
    if len(variants) > 1:
        rows += [FigureRow(f"Variant {row.label}", _cells(row)) for row in variants]
    return rows


def _cells(row) -> list[tuple[str, object]]:
    return [(name, getattr(row, name, 0)) for name, _heading, _meaning in FIGURE_COLUMNS]


def audience_now(broadcast: Broadcast) -> tuple[int | None, str]:
    """Who the broadcast would reach if it started now, or why that cannot be counted."""
    try:
        return broadcast_audience_count(broadcast=broadcast, at=timezone.now()), ""
    except SegmentDefinitionError as exc:
        return None, str(exc)


def cap_override_entry(broadcast: Broadcast):
    """The audit entry of the latest change to the frequency-cap override (who and when), if any."""
    return broadcast.audit.filter(action__icontains="cap").order_by("-created_at", "-id").first()


def broadcast_page_context(*, broadcast: Broadcast, may_change: bool, user) -> dict:
    status = BroadcastStatus(broadcast.status)
    buttons = BUTTONS_BY_STATUS.get(status, set()) if may_change else set()
    audience, problem = audience_now(broadcast)
    figures = broadcast_figures(broadcast=broadcast) if broadcast.rule_id else None
    variants = list(broadcast.variants.select_related("template"))
    return {
        "broadcast": broadcast,
        "status_label": status.label,
        "moving": status in MOVING,
        "variants": variants,
        "audience_now": audience,
        "audience_problem": problem,
        "figure_columns": FIGURE_COLUMNS,
        "figure_rows": figure_rows(figures) if figures is not None else [],
        "figures": figures,
        "opens_unreliable": OPENS_UNRELIABLE,
        "audit": list(broadcast.audit.select_related("actor")[:AUDIT_SHOWN]),
        "cap_entry": cap_override_entry(broadcast) if broadcast.ignore_frequency_cap else None,
        "buttons": buttons,
        "no_email_for_test": "test_send" in buttons and not user.email,
        "preview_form": CustomerChoiceForm(auto_id="preview_%s"),
        "test_form": CustomerChoiceForm(auto_id="test_%s"),
        "schedule_form": ScheduleForm(initial={"at": broadcast.scheduled_at} if broadcast.scheduled_at else None),
        "pause_form": PauseForm(),
        "cap_form": CapOverrideForm(
            initial={"ignore": broadcast.ignore_frequency_cap, "reason": broadcast.frequency_cap_override_reason}
        ),
    }
