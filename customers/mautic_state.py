"""Copying a Mautic contact's state onto the customer, newest state only. Part of the customers services (the only
writer of Customer); split out of services.py to keep that module small.

Mautic's webhooks arrive late, out of order, and workflow runs are retried: a copy of an older state must never
overwrite a newer one (a contact who opted out would be opted back in, and `opt_in_confirmed` gates all marketing
email). So the customer keeps `mautic_modified_at`, Mautic's `dateModified` of the state it holds, and a state is
applied only when it is at least as new. Mautic's dates have one-second resolution: a copy from the same second with
other values cannot be ordered, and the caller re-reads the contact from Mautic (`UNDECIDED`); a state read from
Mautic just now (`read_now=True`) is the truth at that second and wins.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.db.models import Q

from .models import Customer
from .services import customer_update, customer_upsert, normalize_email

# The fields a Mautic contact may set on the customer (already checked at the edge: integrations/mautic/fields.py).
MAUTIC_FIELDS = frozenset(
    {
        "name",
        "opt_in_confirmed",
        "vip_status",
        "promo_code",
        "discord_invite_link_vip",
        "discord_invite_link_basic",
    }
)


class MirrorOutcome(StrEnum):
    CREATED = "created"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    STALE = "stale"  # older than the state the customer holds: not applied
    UNDECIDED = "undecided"  # no date, or the same second with other values: re-read the contact and apply that
    NO_CUSTOMER = "no_customer"  # no usable email and no customer with this contact id


@dataclass(frozen=True)
class MirrorResult:
    customer: Customer | None
    outcome: MirrorOutcome
    held_as_of: datetime | None = None  # the customer's Mautic state time before this call


@transaction.atomic
def customer_mautic_state_apply(
    *, email: str, contact_id: str, fields: dict[str, Any], as_of: datetime | None, read_now: bool
) -> MirrorResult:
    """Apply a Mautic contact's state (`fields`, as of Mautic's `as_of`) to the customer with that email (created when
    missing), or, when the email is blank (missing or refused), to the customer already linked to the contact id."""
    unknown = set(fields) - MAUTIC_FIELDS
    if unknown:
        raise ValueError(f"not Mautic fields: {sorted(unknown)}")
    email = normalize_email(email)
    locked = Customer.objects.select_for_update()
    customer = locked.filter(email__iexact=email).first() if email else None
    if customer is None and not email:
        customer = locked.filter(mautic_contact_id=contact_id).order_by("pk").first() if contact_id else None
        if customer is None:
            return MirrorResult(None, MirrorOutcome.NO_CUSTOMER)
    created = False
    if customer is None:
        # Created bare, then locked and compared like any other: a racing writer that created it first may hold newer.
        found, created = customer_upsert(email=email)
        customer = locked.get(pk=found.pk)
    held = customer.mautic_modified_at
    values = {**fields, "mautic_contact_id": str(contact_id)}
    differs = {name: value for name, value in values.items() if getattr(customer, name) != value}
    if as_of is None and not read_now:
        return MirrorResult(customer, MirrorOutcome.UNDECIDED, held)
    if held is not None and as_of is not None:
        if as_of < held:
            return MirrorResult(customer, MirrorOutcome.STALE, held)
        if as_of == held and differs and not read_now:
            return MirrorResult(customer, MirrorOutcome.UNDECIDED, held)
    if as_of is not None and (held is None or as_of > held):
        differs["mautic_modified_at"] = as_of
    if differs:
        customer_update(customer=customer, **differs)
    outcome = MirrorOutcome.CREATED if created else MirrorOutcome.CHANGED if differs else MirrorOutcome.UNCHANGED
    return MirrorResult(customer, outcome, held)


def customer_mautic_state_time_note(*, customer: Customer, as_of: datetime) -> None:
    """We changed the Mautic contact ourselves (workflow 2's VIP flag and promo code, already on the customer), which
    Mautic dated `as_of`: a late copy of an older state must not undo it. A webhook of that same second with other
    values is then re-read (UNDECIDED above), so the fields we did not write still arrive."""
    Customer.objects.filter(pk=customer.pk).filter(
        Q(mautic_modified_at__isnull=True) | Q(mautic_modified_at__lt=as_of)
    ).update(mautic_modified_at=as_of)
