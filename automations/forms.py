"""Form fields for the rule and step admin: delays in words, events by name with what they mean, products by name.

Marketing edits sequences without a manual: a delay is written and shown as "3 days 4 hours" (not Django's
`3 04:00:00`), a trigger or exit event comes with a line on what it means, and a rule's products are picked from the
products synced from Stripe, labelled by name, while the rule still stores Stripe product ids.
"""

import re
from datetime import timedelta

from django import forms
from django.utils.dateparse import parse_duration

from customers import events

from .models import StepAnchor

# --- delays ------------------------------------------------------------------------------------------------------

MAX_DELAY = timedelta(days=365)

_UNITS = {
    "weeks": ("w", "wk", "wks", "week", "weeks"),
    "days": ("d", "day", "days"),
    "hours": ("h", "hr", "hrs", "hour", "hours"),
    "minutes": ("m", "min", "mins", "minute", "minutes"),
    "seconds": ("s", "sec", "secs", "second", "seconds"),
}
_UNIT_OF = {spelling: unit for unit, spellings in _UNITS.items() for spelling in spellings}
_PART = re.compile(r"(\d+)\s*([a-z]+)")
_ZERO = {"0", "now", "immediately", "none", "no delay"}
EXAMPLES = '"3 days 4 hours", "90 minutes", "1 day", "2h" or "1d 4h"'


def format_delay(value: timedelta | None) -> str:
    """A delay in words: "3 days 4 hours", "1 hour 30 minutes", "0 minutes"."""
    if value is None:
        return ""
    if value < timedelta(0):
        return "-" + format_delay(-value)
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    return " ".join(parts) or "0 minutes"


def parse_delay(text: str) -> timedelta:
    """ "3 days 4 hours", "90 minutes", "2h", "1d 4h", "1 day, 2 hours and 5 minutes"; also Django's "3 04:00:00".

    Raises ValidationError with a message saying what was wrong and how to write it."""
    raw = " ".join(str(text).split())
    lowered = raw.lower().replace(",", " ").replace(" and ", " ")
    if lowered in _ZERO:
        return timedelta(0)
    if lowered.startswith("-"):
        raise forms.ValidationError("A delay cannot be negative.", code="negative")
    if ":" in lowered:  # the format this field showed before ("1 00:00:00", "3:00:00")
        parsed = parse_duration(lowered)
        if parsed is None:
            raise forms.ValidationError(f"Could not read {raw[:60]!r} as a delay: write it like {EXAMPLES}.")
        return _bounded(parsed)
    if not lowered:
        raise forms.ValidationError(f"Write a delay like {EXAMPLES}, or 0 for no delay.", code="required")
    amounts: dict[str, int] = {}
    position = 0
    for match in _PART.finditer(lowered):
        if lowered[position : match.start()].strip():
            break
        number, spelling = match.groups()
        unit = _UNIT_OF.get(spelling)
        if unit is None:
            raise forms.ValidationError(
                f"{spelling[:30]!r} is not a unit: use weeks, days, hours, minutes or seconds, e.g. {EXAMPLES}.",
                code="unit",
            )
        if unit in amounts:
            raise forms.ValidationError(f"{unit.capitalize()} are given twice in {raw[:60]!r}.", code="repeated")
        if len(number) > 7:
            raise forms.ValidationError(f"A delay is at most {MAX_DELAY.days} days.", code="too_long")
        amounts[unit] = int(number)
        position = match.end()
    if not amounts or lowered[position:].strip():
        if lowered.isdigit():
            message = f"Say the unit of {raw[:20]!r}: e.g. {lowered} days, {lowered} hours or {lowered} minutes."
        else:
            message = f"Could not read {raw[:60]!r} as a delay: write it like {EXAMPLES}."
        raise forms.ValidationError(message, code="invalid")
    return _bounded(timedelta(**amounts))


def _bounded(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise forms.ValidationError("A delay cannot be negative.", code="negative")
    if value > MAX_DELAY:
        raise forms.ValidationError(f"A delay is at most {MAX_DELAY.days} days.", code="too_long")
    return value


class DelayInput(forms.TextInput):
    def __init__(self, attrs=None):
        super().__init__({"placeholder": "e.g. 3 days 4 hours", "size": 18, **(attrs or {})})

    def format_value(self, value):
        if isinstance(value, timedelta):
            return format_delay(value)
        return super().format_value(value)


class DelayField(forms.Field):
    """A DurationField's form field that reads and shows delays in words."""

    widget = DelayInput
    default_error_messages = {"required": f"Write a delay like {EXAMPLES}, or 0 for no delay."}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, timedelta):
            return value
        return parse_delay(value)

    def prepare_value(self, value):
        return format_delay(value) if isinstance(value, timedelta) else value

    def has_changed(self, initial, data):
        try:
            return self.to_python(data) != initial
        except forms.ValidationError:
            return True


def describe_timing(*, delay: timedelta, anchor: str) -> str:
    """When a step goes out, in words: "3 days after enrollment", "1 day before Stripe's next payment attempt"."""
    words = format_delay(delay)
    if not delay:
        return {
            StepAnchor.ENROLLMENT: "at enrollment",
            StepAnchor.PREVIOUS_STEP: "with the previous step",
            StepAnchor.NEXT_PAYMENT_ATTEMPT: "at Stripe's next payment attempt",
            StepAnchor.BEFORE_NEXT_PAYMENT_ATTEMPT: "at Stripe's next payment attempt",
            StepAnchor.RETRIES_EXHAUSTED: "when Stripe stops retrying",
        }.get(anchor, anchor)
    if anchor == StepAnchor.RETRIES_EXHAUSTED:
        return f"{words} after Stripe stops retrying"
    label = StepAnchor(anchor).label if anchor in StepAnchor.values else anchor
    return f"{words} {label}"


ANCHOR_HELP = {
    StepAnchor.ENROLLMENT: "counted from the moment the customer entered the sequence.",
    StepAnchor.PREVIOUS_STEP: "counted from when the step before this one is due.",
    StepAnchor.NEXT_PAYMENT_ATTEMPT: (
        "counted from the next payment attempt Stripe announced with the failure (its next_payment_attempt); "
        "moves when a later failure announces another; without one, from enrollment."
    ),
    StepAnchor.BEFORE_NEXT_PAYMENT_ATTEMPT: (
        "this long before each payment attempt Stripe announces (never before now): one email per attempt; "
        "not sent when no attempt is coming."
    ),
    StepAnchor.RETRIES_EXHAUSTED: "counted from the failure after which Stripe stops retrying the payment.",
}

# --- events ------------------------------------------------------------------------------------------------------

EVENT_MEANINGS = {
    events.SUBSCRIPTION_CREATED: "A customer started a subscription (paid or trial).",
    events.SUBSCRIPTION_UPDATED: "A subscription changed: plan, quantity, status or renewal date.",
    events.SUBSCRIPTION_CANCEL_SCHEDULED: "A customer asked to cancel at the end of the paid period (still active).",
    events.SUBSCRIPTION_CANCELED: "A subscription ended: cancelled, or unpaid after Stripe's last retry.",
    events.SUBSCRIPTION_TRIAL_ENDING: "A trial ends in about three days (Stripe's trial_will_end).",
    events.PAYMENT_FAILED: "A renewal or invoice payment failed; Stripe says when it will retry, if it will.",
    events.PAYMENT_RECOVERED: "An invoice that had failed was paid after all.",
    events.PAYMENT_SUCCEEDED: "An invoice was paid (every renewal).",
    events.DISPUTE_OPENED: "The customer's bank opened a dispute (chargeback) on a payment.",
    events.CHECKOUT_COMPLETED: "A customer finished a Stripe Checkout (a new purchase).",
    events.CUSTOMER_STAGE_CHANGED: "The customer moved to another lifecycle stage (e.g. Active to At risk).",
    events.TRIAL_STARTED: "A customer started a free trial.",
    events.CUSTOMER_EMAIL_ADDED: "A customer without an email address got one.",
    events.CARD_EXPIRING: "The card a subscription renews with expires before the renewal (once per card).",
    events.CARD_UPDATE_LINK_REQUESTED: "Support sent the customer their card-update link from the customer page.",
}


def event_label(name: str) -> str:
    """ "payment.failed" -> "Payment failed"."""
    return name.replace(".", " ").replace("_", " ").capitalize()


def event_choices() -> list[tuple[str, str]]:
    return [(name, f"{event_label(name)} ({name})") for name in events.EVENT_NAMES]


def event_table() -> list[tuple[str, str, str]]:
    """(name, label, meaning) for the rule page's table."""
    return [(name, event_label(name), EVENT_MEANINGS.get(name, "")) for name in events.EVENT_NAMES]


class EventCheckboxes(forms.CheckboxSelectMultiple):
    """Checkboxes whose labels say what each event means (as the option's title and in the visible label)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        meaning = EVENT_MEANINGS.get(value)
        if meaning:
            option["label"] = f"{label}: {meaning}"
        return option


# --- products ----------------------------------------------------------------------------------------------------


def product_choices(stored_ids: list[str]) -> list[tuple[str, str]]:
    """The products synced from Stripe, by name; ids the rule stores that are no longer synced are kept as
    "unknown product <id>", so saving the rule does not silently drop them."""
    from billing.selectors import products_synced

    choices = []
    for product_id, name, active in products_synced():
        label = name or product_id
        choices.append((product_id, f"{label} (archived in Stripe)" if active is False else label))
    known = {value for value, _ in choices}
    unknown = [product_id for product_id in stored_ids if product_id not in known]
    choices.extend((product_id, f"unknown product {product_id}") for product_id in unknown)
    return choices
