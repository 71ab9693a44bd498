"""The cancellation flow's figures for the dashboard (backoffice/dashboard.py), a fixed number of queries each.

Saved: a customer is saved when their subscription is still running 30 days after the cancel session (not ended by
then; a pause counts as running). The comparison takes the sessions that had an offer for their reason and whose 30
days ended in the period: those shown the offer against the holdout, to whom the same offer was withheld. Customers
whose offer was not due (one already shown in the last BILLING_SAVE_OFFER_EVERY_MONTHS months) or whose reason had no
offer are in neither group.
"""

from datetime import UTC, datetime, timedelta

from django.db.models import Count, F, Q

from core.proportions import newcombe_difference, wilson_interval

from .models import REASONS, CancelOutcome, CancelSession, ChangeKind, ChangeStatus, OfferKind, SubscriptionChange

SAVED_AFTER = timedelta(days=30)


def _saved_condition() -> Q:
    return Q(subscription__ended_at__isnull=True) | Q(subscription__ended_at__gt=F("created_at") + SAVED_AFTER)


def cancel_sessions_summary(*, since: datetime, until: datetime) -> dict:
    """Sessions started in the period: by reason, and by outcome (offers accepted per kind, cancellations, left)."""
    in_period = CancelSession.objects.filter(created_at__gte=since, created_at__lte=until)
    by_reason = dict(in_period.exclude(reason="").values_list("reason").annotate(n=Count("id")))
    outcomes = {
        (outcome, kind): n
        for outcome, kind, n in in_period.values_list("outcome", "offer_kind").annotate(n=Count("id"))
    }
    accepted = {kind.label: outcomes.get((CancelOutcome.ACCEPTED, kind.value), 0) for kind in OfferKind}
    return {
        "sessions": sum(outcomes.values()),
        "reasons": [(words, by_reason[code]) for code, words in REASONS.items() if by_reason.get(code)],
        "accepted": accepted,
        "canceled": sum(n for (outcome, _), n in outcomes.items() if outcome == CancelOutcome.CANCELED),
        "undecided": sum(n for (outcome, _), n in outcomes.items() if not outcome),
    }


def save_rate_comparison(*, since: datetime, until: datetime) -> dict:
    """Offered against holdout, over the sessions whose 30 days ended in the period, with Newcombe's 95% interval for
    the difference of the saved shares (core/proportions.py)."""
    matured = CancelSession.objects.filter(
        created_at__gte=since - SAVED_AFTER, created_at__lte=until - SAVED_AFTER, offer_eligible=True
    ).exclude(offer_kind="")
    rows = matured.values_list("holdout").annotate(n=Count("id"), saved=Count("id", filter=_saved_condition()))
    groups = {holdout: (n, saved) for holdout, n, saved in rows}
    offered_n, offered_saved = groups.get(False, (0, 0))
    holdout_n, holdout_saved = groups.get(True, (0, 0))
    interval = newcombe_difference(offered_saved, offered_n, holdout_saved, holdout_n)
    return {
        "offered": _group(offered_saved, offered_n),
        "holdout": _group(holdout_saved, holdout_n),
        "difference": _percent(interval.difference),
        "low": _percent(interval.low),
        "high": _percent(interval.high),
        "significant": interval.excludes_zero,
    }


def _group(saved: int, total: int) -> dict:
    low, high = wilson_interval(saved, total)
    share = saved / total if total else None
    return {"n": total, "saved": saved, "percent": _percent(share), "low": _percent(low), "high": _percent(high)}


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def pauses_ended(*, since: datetime, until: datetime) -> dict:
    """Pauses applied at Stripe (from the cancel page or by staff) whose end date fell in the period: resumed (the
    subscription was still running at the pause's end) or ended in a cancellation (it ended before)."""
    pauses = SubscriptionChange.objects.filter(kind=ChangeKind.PAUSE, status=ChangeStatus.APPLIED).values_list(
        "params__pause_collection__resumes_at", "subscription__ended_at"
    )
    # The end date is inside the stored request (a JSON number), so it is compared here; only a pause asked in the
    # 100 days before the period can end in it (a pause lasts at most 3 months).
    pauses = pauses.filter(created_at__gte=since - timedelta(days=100), created_at__lte=until)
    resumed = canceled = 0
    for resumes_at, ended_at in pauses:
        if not isinstance(resumes_at, int):
            continue  # a pause without an end date (none of ours): nothing to count at its end
        end = datetime.fromtimestamp(resumes_at, tz=UTC)
        if not since <= end <= until:
            continue
        if ended_at is not None and ended_at <= end:
            canceled += 1
        else:
            resumed += 1
    return {"resumed": resumed, "canceled": canceled}


def retention_board(*, since: datetime, until: datetime) -> dict:
    return {
        **cancel_sessions_summary(since=since, until=until),
        "comparison": save_rate_comparison(since=since, until=until),
        "pauses": pauses_ended(since=since, until=until),
    }
