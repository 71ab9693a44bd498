"""Changing a subscription at Stripe: pause, discount, move to a cheaper price, cancel at the period's end.

Each change is stored first (`SubscriptionChange`: the parameters and the Idempotency-Key, unique), then sent outside
any transaction. Sending again (a repeated click, a reload, the retry schedule) sends the stored parameters under the
stored key, so Stripe changes the subscription once, however often we ask. Nothing here writes the CRM's
Subscription: Stripe's webhook does that (billing/stripe_webhook/), like for any other change made at Stripe.

Other code that must pause a subscription (the support ticket page) calls `subscription_pause` with its own key. A
new pause is refused while another change to the subscription is unanswered (`change_unanswered`).
"""

import calendar
import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from ..models import CURRENT_STATUSES, Subscription
from .models import ChangeKind, ChangeStatus, SubscriptionChange
from .stripe_calls import StripeChangeError, coupon_ensure, subscription_update_send

logger = logging.getLogger(__name__)

PAUSE_MONTHS = range(1, 4)
# https://docs.stripe.com/api/subscriptions/update#update_subscription-pause_collection-behavior: `void` voids the
# invoices of the pause, so the customer owes nothing for it and pays again from `resumes_at`.
PAUSE_BEHAVIOR = "void"
# Stripe remembers an Idempotency-Key for 24 hours: a change still unanswered after that is left for staff.
RETRY_WITHIN = timedelta(hours=23)


class SubscriptionChangeRefused(Exception):
    """The change cannot be asked for this subscription (ended, already paused, bad months): nothing was sent."""


def months_later(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months later (the month's last day when it is shorter)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def pause_params(*, months: int, now: datetime) -> dict:
    resumes_at = months_later(now, months).replace(microsecond=0)
    return {"pause_collection": {"behavior": PAUSE_BEHAVIOR, "resumes_at": int(resumes_at.timestamp())}}


def coupon_for(*, percent_off: int, months: int) -> dict:
    """The save offer's coupon: its id names its terms (one coupon per terms, created once)."""
    return {"id": f"modready-save-{percent_off}off-{months}m", "percent_off": percent_off, "months": months}


def discount_params(*, coupon_id: str) -> dict:
    # https://docs.stripe.com/api/subscriptions/update#update_subscription-discounts
    return {"discounts": [{"coupon": coupon_id}]}


def downgrade_params(*, subscription: Subscription, price_id: str) -> dict:
    """The subscription's ModReady item moves to `price_id` from the next invoice, without proration
    (https://docs.stripe.com/billing/subscriptions/change-price)."""
    return {"items": [{"id": _item_id(subscription), "price": price_id}], "proration_behavior": "none"}


def cancel_params(*, feedback: str, comment: str) -> dict:
    # https://docs.stripe.com/api/subscriptions/update#update_subscription-cancellation_details
    details = {"feedback": feedback, **({"comment": comment[:500]} if comment else {})}
    return {"cancel_at_period_end": True, "cancellation_details": details}


def _item_id(subscription: Subscription) -> str:
    if not subscription.item_id:
        raise SubscriptionChangeRefused("The subscription's item is not known yet.")
    return subscription.item_id


def change_request(
    *,
    subscription: Subscription,
    kind: str,
    params: dict,
    idempotency_key: str,
    actor=None,
    coupon: dict | None = None,
) -> SubscriptionChange:
    """Store the change to send, or the one already stored under `idempotency_key` (its parameters win: the same key
    always sends the same request)."""
    with transaction.atomic():
        change, _ = SubscriptionChange.objects.get_or_create(
            key=idempotency_key,
            defaults={
                "subscription": subscription,
                "kind": kind,
                "params": params,
                "coupon": coupon or {},
                "requested_by": actor,
                "created_at": timezone.now(),
            },
        )
    return change


def change_send(*, change_id: int) -> SubscriptionChange:
    """Send a stored change to Stripe (again, if it has no answer yet). A refusal marks it failed; a lost answer (no
    answer, 409, 5xx) leaves it applying, to be sent again as it is. Call outside any transaction."""
    change = SubscriptionChange.objects.select_related("subscription").get(pk=change_id)
    if change.status != ChangeStatus.APPLYING:
        return change
    try:
        if change.coupon:
            coupon_ensure(
                coupon_id=change.coupon["id"],
                percent_off=change.coupon["percent_off"],
                months=change.coupon["months"],
            )
        subscription_update_send(
            subscription_id=change.subscription.stripe_subscription_id,
            params=change.params,
            idempotency_key=change.key,
        )
    except StripeChangeError as exc:
        logger.warning("Subscription change %s: %s (status %s)", change.key, exc, exc.status)
        status = ChangeStatus.APPLYING if exc.outcome_unknown else ChangeStatus.FAILED
        _change_record(change, status=status, error=str(exc)[:2000])
        return change
    _change_record(change, status=ChangeStatus.APPLIED, error="")
    return change


def _change_record(change: SubscriptionChange, *, status: str, error: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        locked = SubscriptionChange.objects.select_for_update().get(pk=change.pk)
        locked.attempts += 1
        if locked.status == ChangeStatus.APPLYING:  # a concurrent send may have recorded the answer already
            locked.status, locked.error = status, error
            locked.applied_at = now if status == ChangeStatus.APPLIED else None
        locked.save(update_fields=["attempts", "status", "error", "applied_at"])
    change.refresh_from_db()


def changes_retry_due(*, now: datetime | None = None) -> int:
    """Send again every change still without an answer (older than a minute, younger than Stripe's key window)."""
    now = now or timezone.now()
    due = SubscriptionChange.objects.filter(
        status=ChangeStatus.APPLYING, created_at__lt=now - timedelta(minutes=1), created_at__gte=now - RETRY_WITHIN
    ).values_list("pk", flat=True)
    return sum(change_send(change_id=pk).status == ChangeStatus.APPLIED for pk in list(due))


def pause_refusal(subscription: Subscription, months: int) -> str | None:
    """Why `subscription` cannot be paused for `months`, or None."""
    if months not in PAUSE_MONTHS:
        return "A pause lasts 1 to 3 months."
    if subscription.status not in CURRENT_STATUSES:
        return f"The subscription is {subscription.status}."
    if subscription.pause_behavior:
        return "The subscription is paused already."
    if subscription.cancel_at_period_end or subscription.cancel_at:
        return "The subscription is set to be canceled."
    if change_unanswered(subscription):
        return (
            "A change to this subscription is still waiting for Stripe's answer; it is sent again by itself under "
            "its own key. Ask again once it shows."
        )
    return None


def change_unanswered(subscription: Subscription, *, now: datetime | None = None) -> bool:
    """Whether a change to `subscription` had its answer lost and is still being sent again (within Stripe's key
    window). Stripe may have applied it: a new change now, under a new key (a reloaded page, a second cancel
    session), could pause twice with other dates."""
    now = now or timezone.now()
    return SubscriptionChange.objects.filter(
        subscription=subscription, status=ChangeStatus.APPLYING, created_at__gte=now - RETRY_WITHIN
    ).exists()


def subscription_pause(
    *, subscription: Subscription, months: int, idempotency_key: str, actor=None, now: datetime | None = None
) -> SubscriptionChange:
    """Pause the subscription's payments for `months` (1 to 3) at Stripe: `pause_collection` with behavior `void` and
    `resumes_at` `months` later; the provisioning panel suspends the server (data kept) when Stripe's webhook says it
    is paused, and resumes it when Stripe resumes it. `idempotency_key` comes from the caller's own ids (e.g.
    f"ticket:{ticket.pk}:pause"): the first call with a key stores the request, every later call with it sends that
    same request again (its months win). `actor`: the staff user, recorded on the change. Raises
    SubscriptionChangeRefused when it cannot be asked; returns the change (status applied, applying or failed)."""
    stored = SubscriptionChange.objects.filter(key=idempotency_key).first()
    if stored is None:
        problem = pause_refusal(subscription, months)
        if problem:
            raise SubscriptionChangeRefused(problem)
        stored = change_request(
            subscription=subscription,
            kind=ChangeKind.PAUSE,
            params=pause_params(months=months, now=now or timezone.now()),
            idempotency_key=idempotency_key,
            actor=actor,
        )
    return change_send(change_id=stored.pk)
