"""The hourly safety net for workflow 1. Mautic never retries a delivery that failed, so a lost webhook would mean a
lost invite: this job asks Mautic for opted-in contacts modified since its last run (with a few minutes of overlap)
and starts a run for each one still lacking the link of its tier. The runs take the same per-contact lock as webhook
runs, so a contact handled by both gets one invite.
"""

from datetime import timedelta

from django.utils import timezone

from integrations.mautic.client import MauticClient
from integrations.mautic.fields import contact_fields_clean
from integrations.models import RunKind, SyncCursor
from integrations.runs import workflow_run_create

from .contact_invite import LINK_FIELDS, tier_of

CURSOR = "mautic-reconcile"
OVERLAP = timedelta(minutes=5)
FIRST_LOOKBACK = timedelta(days=1)
PAGE = 100


def mautic_reconcile() -> int:
    """Returns how many runs it started."""
    started = timezone.now()
    cursor = SyncCursor.objects.filter(name=CURSOR).first()
    since = (cursor.value if cursor else started - FIRST_LOOKBACK) - OVERLAP
    mautic = MauticClient.from_settings()
    filters = [
        ("date_modified", "gte", since.strftime("%Y-%m-%d %H:%M:%S")),  # Mautic keeps dates in UTC
        ("opt_in_confirmed", "eq", "1"),
    ]
    created_runs = 0
    start = 0
    while True:
        contacts = mautic.contacts_where(filters, start=start, limit=PAGE)
        for contact in contacts:
            if contact.text(LINK_FIELDS[tier_of(contact.fields)]):
                continue
            fields, refused = contact_fields_clean(contact.fields)
            _, created = workflow_run_create(
                kind=RunKind.CONTACT_INVITE,
                key=f"mautic-reconcile:{started:%Y%m%dT%H%M%S}:contact-{contact.id}",
                subject=f"mautic-contact:{contact.id}",
                input={
                    "contact_id": contact.id,
                    "fields": fields,
                    "as_of": contact.modified_at.isoformat() if contact.modified_at else None,
                    "refused": refused,
                    "source": "reconcile",
                },
            )
            created_runs += created
        if len(contacts) < PAGE:
            break
        start += PAGE
    SyncCursor.objects.update_or_create(name=CURSOR, defaults={"value": started})
    return created_runs
