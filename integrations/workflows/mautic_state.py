"""Which state of a Mautic contact a contact-invite run acts on, copied onto the customer only when it is the newest.

- First attempt of a webhook (or reconciliation) run: the payload's fields, as of its `dateModified`. A payload older
  than the state the customer already holds ends the run as skipped: a newer webhook (or a re-read) already applied,
  and its own run acts on it. Same second with other values, or no date at all: re-read.
- A retry (any attempt after the first, from the schedule or from staff): never the stored payload, which may be
  hours old (an opt-out meanwhile would be undone); the contact is re-read from Mautic and that state applies.
- A contact Mautic no longer has (404 on the re-read) ends the run at once as skipped: nothing will bring it back.

Fields were checked at the edge (integrations/mautic/fields.py) and are checked again here, for runs created
another way; a refused field is recorded as a step of the run (and, for webhooks, on the delivery).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from customers.mautic_state import MirrorOutcome, customer_mautic_state_apply
from integrations.mautic.client import MauticClient, MauticError
from integrations.mautic.fields import RefusedField, clean_field, contact_fields_clean
from integrations.models import StepOutcome
from integrations.runs import RunSkipped, StepNote, StepRecorder

from .crm import MARKETING_FIELDS

CONTACT_GONE = "contact no longer exists in Mautic"


@dataclass
class ContactState:
    fields: dict  # checked fields, alias -> value
    as_of: datetime | None
    read_now: bool  # read from Mautic during this attempt (not a stored payload)


def contact_gone(exc: MauticError) -> bool:
    return exc.status == 404


@contextmanager
def step_unless_gone(recorder: StepRecorder, name: str, detail: str = "") -> Iterator[StepNote]:
    """`recorder.step`, except that a 404 from Mautic records the step as skipped and ends the run as skipped."""
    note = StepNote(detail=detail)
    started = timezone.now()
    try:
        yield note
    except MauticError as exc:
        if contact_gone(exc):
            recorder.record(name, StepOutcome.SKIPPED, CONTACT_GONE, started)
            raise RunSkipped(CONTACT_GONE) from exc
        recorder.record(name, StepOutcome.FAILED, note.detail, started, error=f"{type(exc).__name__}: {exc}")
        raise
    except Exception as exc:
        recorder.record(name, StepOutcome.FAILED, note.detail, started, error=f"{type(exc).__name__}: {exc}")
        raise
    recorder.record(name, note.outcome, note.detail, started)


@contextmanager
def contact_gone_is_skip() -> Iterator[None]:
    """Any Mautic call on the contact answering 404: the contact was deleted; the run ends as skipped."""
    try:
        yield
    except MauticError as exc:
        if contact_gone(exc):
            raise RunSkipped(CONTACT_GONE) from exc
        raise


def email_or_blank(value) -> str:
    try:
        return clean_field("email", value)
    except RefusedField:
        return ""


def contact_reread(recorder: StepRecorder, contact_id: str, *, step: str = "mautic.state") -> ContactState:
    mautic = MauticClient.from_settings()
    with step_unless_gone(recorder, step) as note:
        contact = mautic.contact_get(contact_id)
        when = f"{contact.modified_at:%Y-%m-%d %H:%M:%S} UTC" if contact.modified_at else "no date"
        note.detail = f"re-read the contact (changed in Mautic {when})"
    fields, refused = contact_fields_clean(contact.fields)
    _record_refused(recorder, refused)
    return ContactState(fields=fields, as_of=contact.modified_at, read_now=True)


def _record_refused(recorder: StepRecorder, refused: list[str]) -> None:
    if refused:
        recorder.record("mautic.refused_fields", StepOutcome.SKIPPED, "; ".join(refused), timezone.now())


def _payload_state(recorder: StepRecorder) -> ContactState | None:
    run = recorder.run
    as_of = run.input.get("as_of")
    if not as_of:
        return None
    fields, refused = contact_fields_clean(run.input.get("fields") or {})
    _record_refused(recorder, [*run.input.get("refused", []), *refused])
    return ContactState(fields=fields, as_of=datetime.fromisoformat(as_of), read_now=False)


def _apply(contact_id: str, state: ContactState):
    values = {MARKETING_FIELDS[alias]: state.fields[alias] for alias in MARKETING_FIELDS if alias in state.fields}
    full_name = " ".join(str(state.fields.get(k) or "").strip() for k in ("firstname", "lastname")).strip()
    if full_name:
        values["name"] = full_name[:200]
    return customer_mautic_state_apply(
        email=state.fields.get("email") or "",
        contact_id=contact_id,
        fields=values,
        as_of=state.as_of,
        read_now=state.read_now,
    )


def contact_state_apply(recorder: StepRecorder) -> ContactState:
    """The state this attempt acts on, copied onto the customer when it is the newest. Raises RunSkipped when the
    payload is older than what the customer holds, or the contact is gone."""
    run = recorder.run
    contact_id = str(run.input["contact_id"])
    state = _payload_state(recorder) if run.attempts <= 1 else None
    result = _apply(contact_id, state) if state is not None else None
    if result is None or result.outcome == MirrorOutcome.UNDECIDED:
        state = contact_reread(recorder, contact_id)
        result = _apply(contact_id, state)
    if result.customer is not None:
        recorder.customer_set(result.customer)
    source = "re-read from Mautic" if state.read_now else "from the webhook"
    when = f"as of {state.as_of:%Y-%m-%d %H:%M:%S} UTC" if state.as_of else "undated"
    if result.outcome == MirrorOutcome.STALE:
        held = f"{result.held_as_of:%Y-%m-%d %H:%M:%S} UTC"
        reason = f"Mautic data {source} {when} is older than the data we hold (as of {held}); not applied"
        recorder.skip("crm.mirror", reason)
        raise RunSkipped(reason)
    if result.outcome in (MirrorOutcome.CREATED, MirrorOutcome.CHANGED):
        recorder.record("crm.mirror", StepOutcome.OK, f"marketing fields copied {source}, {when}", timezone.now())
    return state
