"""The only way anything creates or changes a customer, records a timeline event or moves a lifecycle stage."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import events
from .lifecycle import ONBOARDING_SETTLE_AFTER, Stage, can_transition, onboarding_settled_at
from .models import Customer, StageTransition, TimelineEvent, TimelineSource
from .rollups import stage_move_day_record, stage_move_day_record_created

logger = logging.getLogger(__name__)

# Fields other apps may set through customer_upsert / customer_update. Identity fields are handled separately.
UPDATABLE_FIELDS = frozenset(
    {
        "name",
        "discord_user_id",
        "mautic_contact_id",
        "espocrm_lead_id",
        "opt_in_confirmed",
        "vip_status",
        "promo_code",
        "discord_invite_link_vip",
        "discord_invite_link_basic",
        "mautic_modified_at",
    }
)


class InvalidStageTransition(Exception):
    def __init__(self, from_stage: str, to_stage: str):
        self.from_stage, self.to_stage = from_stage, to_stage
        super().__init__(f"A customer cannot move from {from_stage} to {to_stage}")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"customer fields not settable here: {sorted(unknown)}")


def _find(*, email: str, stripe_customer_id: str) -> Customer | None:
    if stripe_customer_id:
        customer = Customer.objects.filter(stripe_customer_id=stripe_customer_id).first()
        if customer:
            return customer
    if email:
        return Customer.objects.filter(email__iexact=email).first()
    return None


@transaction.atomic
def customer_upsert(
    *,
    email: str,
    stripe_customer_id: str = "",
    metadata: dict | None = None,
    **fields: Any,
) -> tuple[Customer, bool]:
    """Find or create the customer and apply the given fields. Returns (customer, created).

    Identity is anchored on the Stripe customer id: a customer found by it takes the new email, so an email change in
    Stripe does not make a second customer. Without a Stripe match, the email (case-insensitive) is the key, and a
    Stripe id is attached to the customer found by email; a Stripe customer with no email is created with a blank
    one. Two writers racing to create the same customer meet at the
    unique constraints; the loser re-reads and updates instead.
    """
    _check_fields(fields)
    email = normalize_email(email)
    if not email and not stripe_customer_id:
        raise ValueError("customer_upsert needs an email or a Stripe customer id")

    customer = _find(email=email, stripe_customer_id=stripe_customer_id)
    if customer is None:
        try:
            return _create(email=email, stripe_customer_id=stripe_customer_id, metadata=metadata, fields=fields), True
        except IntegrityError:
            # Another writer created it between our read and insert: continue as an update of its row.
            customer = _find(email=email, stripe_customer_id=stripe_customer_id)
            if customer is None:
                raise

    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    had_email = bool(customer.email)
    changed = _apply_identity(customer, email=email, stripe_customer_id=stripe_customer_id)
    changed |= _apply_fields(customer, fields=fields, metadata=metadata)
    if changed:
        customer.save(update_fields=[*changed, "updated_at"])
    if not had_email and "email" in changed:
        events.domain_event_publish(
            name=events.CUSTOMER_EMAIL_ADDED,
            key=f"customer:{customer.pk}:email-added:{customer.email}",
            customer=customer,
            payload={"email": customer.email},
        )
    return customer, False


def _create(*, email: str, stripe_customer_id: str, metadata: dict | None, fields: dict[str, Any]) -> Customer:
    """Insert a new customer in a savepoint (IntegrityError when a concurrent writer got there first).

    A Stripe customer without an email still becomes a customer (keyed by its Stripe id), so no billing event about
    it is lost; the email arrives with a later customer.updated."""
    with transaction.atomic():
        customer = Customer.objects.create(
            email=email,
            stripe_customer_id=stripe_customer_id,
            metadata=metadata or {},
            stage_changed_at=timezone.now(),
            **fields,
        )
        stage_move_day_record_created(customer=customer)
    return customer


def _apply_fields(customer: Customer, *, fields: dict[str, Any], metadata: dict | None) -> set[str]:
    changed: set[str] = set()
    for field, value in fields.items():
        if getattr(customer, field) != value:
            setattr(customer, field, value)
            changed.add(field)
    if metadata:
        merged = {**customer.metadata, **metadata}
        if merged != customer.metadata:
            customer.metadata = merged
            changed.add("metadata")
    return changed


def _apply_identity(customer: Customer, *, email: str, stripe_customer_id: str) -> set[str]:
    changed: set[str] = set()
    if stripe_customer_id and customer.stripe_customer_id != stripe_customer_id:
        if customer.stripe_customer_id:
            # Found by email but already linked to another Stripe customer (a second checkout with the same email).
            # Keep the first link; remember the other id so staff can see it.
            others = customer.metadata.setdefault("other_stripe_customer_ids", [])
            if stripe_customer_id not in others:
                others.append(stripe_customer_id)
                changed.add("metadata")
        else:
            customer.stripe_customer_id = stripe_customer_id
            changed.add("stripe_customer_id")
    if email and customer.email != email:
        taken = Customer.objects.filter(email__iexact=email).exclude(pk=customer.pk).exists()
        if taken:
            logger.warning("Customer %s: new email belongs to customer already; email kept", customer.pk)
            customer.metadata["conflicting_email"] = email
            changed.add("metadata")
        else:
            customer.email = email
            changed.add("email")
    return changed


@transaction.atomic
def customer_update(*, customer: Customer, **fields: Any) -> Customer:
    """Change plain fields of a customer (not identity, not stage)."""
    _check_fields(fields)
    for field, value in fields.items():
        setattr(customer, field, value)
    if fields:
        customer.save(update_fields=[*fields, "updated_at"])
    return customer


class EmailTaken(Exception):
    """Another customer already has that address."""


@transaction.atomic
def customer_change_email(*, customer: Customer, email: str) -> Customer:
    """Staff correcting the address of a customer Stripe does not know (Stripe's customers get theirs from Stripe:
    customer_upsert). Raises EmailTaken when another customer has it."""
    email = normalize_email(email)
    if customer.stripe_customer_id:
        raise ValueError("A Stripe customer's email is changed in Stripe")
    if not email:
        raise ValueError("A customer without a Stripe id needs an email")
    return customer_email_correct(customer=customer, email=email)


@transaction.atomic
def customer_email_correct(*, customer: Customer, email: str) -> Customer:
    """Set the customer's address (staff correcting it; for a Stripe customer only once Stripe has taken it:
    customers.staff_actions). Raises EmailTaken when another customer has it."""
    email = normalize_email(email)
    if not email:
        raise ValueError("An email address is needed")
    if Customer.objects.filter(email__iexact=email).exclude(pk=customer.pk).exists():
        raise EmailTaken(email)
    # Compared with the stored row: a model form has already put the new value on `customer`.
    current = Customer.objects.select_for_update().get(pk=customer.pk)
    if current.email != email:
        current.email = email
        current.save(update_fields=["email", "updated_at"])
    customer.email = email
    return current


@dataclass(frozen=True)
class RecordedEvent:
    event: TimelineEvent
    created: bool


def timeline_event_record(
    *,
    customer: Customer,
    source: str,
    source_key: str,
    kind: str,
    occurred_at: datetime | None = None,
    summary: str = "",
    payload: dict | None = None,
    object_type: str = "",
    object_id: str = "",
) -> RecordedEvent:
    """Add one event to a customer's timeline; the same (source, source_key) recorded twice is a no-op."""
    try:
        with transaction.atomic():
            event = TimelineEvent.objects.create(
                customer=customer,
                source=source,
                source_key=source_key,
                kind=kind,
                occurred_at=occurred_at or timezone.now(),
                summary=summary[:300],
                payload=payload or {},
                object_type=object_type,
                object_id=object_id,
            )
        return RecordedEvent(event=event, created=True)
    except IntegrityError:
        return RecordedEvent(event=TimelineEvent.objects.get(source=source, source_key=source_key), created=False)


def timeline_events_record_many(*, events: list[dict]) -> None:
    """Add many events in one INSERT, each a dict of timeline_event_record's arguments with `customer_id` instead of
    `customer`. An already recorded (source, source_key) is skipped, as in timeline_event_record. For hot paths such
    as the email queue recording a batch of 100 sends."""
    now = timezone.now()
    rows = [
        TimelineEvent(
            **{"occurred_at": now, **event, "summary": event.get("summary", "")[:300], "payload": event.get("payload")}
        )
        for event in events
    ]
    for row in rows:
        row.payload = row.payload or {}
    TimelineEvent.objects.bulk_create(rows, ignore_conflicts=True)


@transaction.atomic
def customer_move_stage(
    *,
    customer: Customer,
    to_stage: str,
    cause: str,
    occurred_at: datetime | None = None,
    source_key: str = "",
    force: bool = False,
    from_stage: str | None = None,
) -> StageTransition | None:
    """Move a customer along the journey, recording the move; returns None when already in that stage.

    Raises InvalidStageTransition for a move the state machine does not allow, unless `force` (a staff correction,
    recorded as such). The same source_key applied twice moves once. Publishes `customer.stage_changed`.
    `from_stage`: move only a customer who is in that stage now (read under the row lock), else return None; for
    rules that apply to one stage only (Onboarding -> Active), so a customer who moved meanwhile stays where they are.
    """
    to_stage = Stage(to_stage).value
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.lifecycle_stage == to_stage:
        return None
    if from_stage is not None and customer.lifecycle_stage != from_stage:
        return None
    if source_key and customer.stage_transitions.filter(source_key=source_key).exists():
        return None
    from_stage = customer.lifecycle_stage
    if not force and not can_transition(from_stage, to_stage):
        raise InvalidStageTransition(from_stage, to_stage)
    occurred_at = occurred_at or timezone.now()
    transition = StageTransition.objects.create(
        customer=customer,
        from_stage=from_stage,
        to_stage=to_stage,
        cause=cause[:200],
        occurred_at=occurred_at,
        source_key=source_key,
        forced=force and not can_transition(from_stage, to_stage),
    )
    stage_move_day_record(transition=transition)
    customer.lifecycle_stage = to_stage
    customer.stage_changed_at = occurred_at
    customer.save(update_fields=["lifecycle_stage", "stage_changed_at", "updated_at"])
    events.domain_event_publish(
        name=events.CUSTOMER_STAGE_CHANGED,
        key=f"stage-transition:{transition.pk}",
        customer=customer,
        payload={"from": from_stage, "to": to_stage, "cause": transition.cause},
        occurred_at=occurred_at,
    )
    return transition


def customer_try_move_stage(**kwargs: Any) -> StageTransition | None:
    """customer_move_stage for event handlers: a refused move is logged and skipped instead of raised.

    An event that arrives when the customer is somewhere the journey does not expect (a payment failure for a
    churned customer) must not fail the whole event.
    """
    try:
        return customer_move_stage(**kwargs)
    except InvalidStageTransition as exc:
        logger.info("Stage move skipped for customer %s: %s", kwargs["customer"].pk, exc)
        return None


def customers_onboarding_settle(*, now: datetime | None = None) -> int:
    """The daily half of the Onboarding -> Active rule (customers/lifecycle.py): customers in Onboarding for
    ONBOARDING_SETTLE_AFTER move to Active, as of the moment they reached it. Returns how many moved."""
    now = now or timezone.now()
    since = now - ONBOARDING_SETTLE_AFTER
    moved = 0
    candidates = Customer.objects.filter(lifecycle_stage=Stage.ONBOARDING, stage_changed_at__lte=since)
    for customer in candidates.only("pk", "stage_changed_at").order_by("pk").iterator():
        moved += _onboarding_settle(customer)
    return moved


@transaction.atomic
def _onboarding_settle(customer: Customer) -> bool:
    settled = onboarding_settled_at(onboarding_since=customer.stage_changed_at)
    key = f"onboarding-settled:{customer.pk}:{int(customer.stage_changed_at.astimezone(UTC).timestamp())}"
    cause = "onboarding settled: 30 days without a failed payment or cancellation"
    transition = customer_move_stage(
        customer=customer,
        to_stage=Stage.ACTIVE,
        from_stage=Stage.ONBOARDING,
        cause=cause,
        occurred_at=settled,
        source_key=key,
    )
    if transition is None:
        return False
    # The other stage moves come with the fact that caused them on the timeline (a payment, a cancellation); this
    # one's fact is the time that passed, so the move is the entry.
    timeline_event_record(
        customer=customer,
        source=TimelineSource.CRM,
        source_key=key,
        kind="lifecycle.onboarding_settled",
        occurred_at=settled,
        summary="Onboarding finished: 30 days subscribed without a failed payment or a cancellation",
    )
    return True
