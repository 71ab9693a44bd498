"""The daily trials sync (07:00 UTC): trial signups become Customers in the trial stage.

- Only through customers.services: upsert by email, the signup on the timeline (once per email and signup time),
  and a move to `trial` only from stages where the journey allows it and the customer is not paying (discovery,
  churned, win-back). A paying customer is never moved back.
- A signup that moved the customer to `trial` publishes the `trial.started` domain event (key: the signup's), so
  rules triggered by it run and campaigns that end on it (win-back, dunning) stop, as they do for a Stripe trial.
  Not for a signup older than TRIAL_STARTED_WITHIN: the first sync reads the whole table, and a trial from months ago
  must not start today's "your trial has started" emails.
- A missing, locked or unreadable file is logged as an error and changes nothing (the whole read happens before the
  first write).
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.configuration import provider_settings
from customers import events as domain_events
from customers import services as customer_services
from customers.lifecycle import Stage

from .reader import TrialsUnreadable, trials_read

logger = logging.getLogger(__name__)

TRIAL_FROM = {Stage.DISCOVERY, Stage.CHURNED, Stage.WIN_BACK}
# The sync runs daily; a week covers a sync that was down for a few days without replaying last season's trials.
TRIAL_STARTED_WITHIN = timedelta(days=7)


@dataclass
class TrialsSyncResult:
    read: int = 0
    created: int = 0
    moved_to_trial: int = 0
    skipped_rows: int = 0
    error: str = ""


def trials_sync(*, path: str | None = None, table: str | None = None) -> TrialsSyncResult:
    path = path or settings.TRIALS_DB_PATH
    table = table or settings.TRIALS_TABLE
    if not (path and table):  # neither given nor configured (integrations/providers.py)
        missing = ", ".join(provider_settings("Trials database").missing())
        logger.error("Trials sync: nothing changed: %s not set", missing)
        return TrialsSyncResult(error=f"{missing} not set (see .env.example)")
    try:
        read = trials_read(path=path, table=table)
    except TrialsUnreadable as exc:
        logger.error("Trials sync: nothing changed: %s", exc)
        return TrialsSyncResult(error=str(exc))
    result = TrialsSyncResult(read=len(read.signups), skipped_rows=read.skipped)
    for signup in read.signups:
        with transaction.atomic():
            customer, created = customer_services.customer_upsert(email=signup.email, metadata={"trial": signup.extra})
            result.created += created
            key = f"trial:{signup.email}:{signup.signed_up_at.isoformat()}"
            customer_services.timeline_event_record(
                customer=customer,
                source="trials",
                source_key=key,
                kind="trial.started",
                occurred_at=signup.signed_up_at,
                summary="Free trial signup on the website",
                payload=signup.extra,
                object_type="trials.signup",
                object_id=signup.email,
            )
            # An old signup found on the first sync must not pull a customer who churned since back into trial.
            newer = customer.stage_changed_at is None or signup.signed_up_at >= customer.stage_changed_at
            if customer.lifecycle_stage == Stage.DISCOVERY or (customer.lifecycle_stage in TRIAL_FROM and newer):
                moved = customer_services.customer_try_move_stage(
                    customer=customer,
                    to_stage=Stage.TRIAL,
                    cause="trial signup on the website",
                    occurred_at=signup.signed_up_at,
                    source_key=key,
                )
                result.moved_to_trial += moved is not None
                if moved is not None and signup.signed_up_at >= timezone.now() - TRIAL_STARTED_WITHIN:
                    domain_events.domain_event_publish(
                        name=domain_events.TRIAL_STARTED,
                        key=key,
                        customer=customer,
                        payload={"source": "website", "signed_up_at": signup.signed_up_at.isoformat()},
                        occurred_at=signup.signed_up_at,
                    )
    if read.skipped:
        logger.warning("Trials sync: %s rows without a usable email or signup time were skipped", read.skipped)
    logger.info("Trials sync: %s", result)
    return result
