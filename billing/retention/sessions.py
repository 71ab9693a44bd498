"""Cancel sessions: the provisioning panel asks for one (billing/retention/api.py), the customer walks the hosted page
(billing/retention/views.py): a reason, then the offer for it (unless this customer had one in the last
BILLING_SAVE_OFFER_EVERY_MONTHS months, or the session is in the holdout), then accept or cancel at the period's end.

The link is core.signed_ids' time-stamped id token over the session id with its own salt, valid
BILLING_CANCEL_SESSION_MINUTES; the session belongs to one subscription of one customer. The outcome is set once,
under the row lock, together with the Stripe change it leads to (keyed `cancel-session:<id>:<kind>`); a second submit
finds it set and sends nothing new.
"""

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from core.signed_ids import TimedIdToken, timed_id_token_make, timed_id_token_read

from ..models import CURRENT_STATUSES, Subscription
from . import changes
from .models import REASONS, CancelOutcome, CancelSession, ChangeKind, OfferKind, SaveOffer

SALT = "billing.cancel-session"


class CancelSessionRefused(Exception):
    """The session cannot be created or the choice made (the subscription ended, is set to cancel already, ...)."""


def cancel_session_url(*, session: CancelSession) -> str:
    token = timed_id_token_make(salt=SALT, key="s", id=session.pk)
    return settings.SITE_URL + reverse("billing-cancel", kwargs={"token": token})


def cancel_session_token_read(token: str) -> TimedIdToken:
    """The link's state and, when valid, the session's id."""
    max_age = settings.BILLING_CANCEL_SESSION_MINUTES * 60
    return timed_id_token_read(salt=SALT, key="s", token=token, max_age_seconds=max_age)


def in_holdout(session_id: int, *, percent: int | None = None) -> bool:
    """A stable share of sessions (BILLING_CANCEL_HOLDOUT_PERCENT) that gets no offer, chosen by a hash of the id."""
    percent = settings.BILLING_CANCEL_HOLDOUT_PERCENT if percent is None else percent
    digest = hashlib.sha256(f"cancel-holdout:{session_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10000 < percent * 100


def cancel_refusal(subscription: Subscription) -> str | None:
    if subscription.status not in CURRENT_STATUSES:
        return f"The subscription is {subscription.status}: there is nothing to cancel."
    if subscription.cancel_at_period_end or subscription.cancel_at:
        return "The subscription is already set to be canceled."
    return None


@transaction.atomic
def cancel_session_create(*, subscription: Subscription, actor=None, now: datetime | None = None) -> CancelSession:
    """A new session for `subscription`. Raises CancelSessionRefused when it cannot be canceled."""
    now = now or timezone.now()
    problem = cancel_refusal(subscription)
    if problem:
        raise CancelSessionRefused(problem)
    offered_since = changes.months_later(now, -settings.BILLING_SAVE_OFFER_EVERY_MONTHS)
    offered_recently = (
        CancelSession.objects.filter(customer_id=subscription.customer_id, created_at__gte=offered_since, holdout=False)
        .exclude(offer_kind="")
        .exists()
    )
    session = CancelSession.objects.create(
        customer_id=subscription.customer_id,
        subscription=subscription,
        created_by=actor,
        created_at=now,
        expires_at=now + timedelta(minutes=settings.BILLING_CANCEL_SESSION_MINUTES),
        offer_eligible=not offered_recently,
    )
    session.holdout = in_holdout(session.pk)
    session.save(update_fields=["holdout"])
    return session


def _offer_for(session: CancelSession, reason: str) -> SaveOffer | None:
    """Marketing's offer for `reason`, if it can apply to this subscription as it stands."""
    if not session.offer_eligible:
        return None
    offer = SaveOffer.objects.filter(reason=reason, enabled=True).first()
    subscription = session.subscription
    if offer is None:
        return None
    if offer.kind == OfferKind.PAUSE and changes.pause_refusal(subscription, offer.pause_months or 0):
        return None
    if offer.kind == OfferKind.DISCOUNT and subscription.discount_id:
        return None
    if offer.kind == OfferKind.DOWNGRADE and (
        offer.downgrade_price_id == subscription.price_id or (offer.downgrade_amount or 0) >= subscription.amount
    ):
        return None
    return offer


@transaction.atomic
def cancel_session_reason_give(*, session_id: int, reason: str, comment: str) -> CancelSession:
    """Record the reason and comment, and the offer that goes with them (withheld in the holdout). Before the outcome
    the customer may go back and give another reason; after it, nothing changes."""
    if reason not in REASONS:
        raise CancelSessionRefused("Choose one of the reasons.")
    session = CancelSession.objects.select_for_update().select_related("subscription").get(pk=session_id)
    if session.outcome:
        return session
    offer = _offer_for(session, reason)
    session.reason, session.comment = reason, comment.strip()[:2000]
    session.reason_given_at = timezone.now()
    session.offer = offer
    session.offer_kind = offer.kind if offer else ""
    session.offer_terms = offer.terms() if offer else {}
    session.save(update_fields=["reason", "comment", "reason_given_at", "offer", "offer_kind", "offer_terms"])
    return session


def _change_for(session: CancelSession, choice: str) -> tuple[str, dict, dict]:
    """(kind, params, coupon) of the Stripe change the choice leads to."""
    subscription, terms = session.subscription, session.offer_terms
    if choice == "cancel":
        return ChangeKind.CANCEL, changes.cancel_params(feedback=session.reason, comment=session.comment), {}
    if session.offer_kind == OfferKind.PAUSE:
        return ChangeKind.PAUSE, changes.pause_params(months=terms["months"], now=timezone.now()), {}
    if session.offer_kind == OfferKind.DISCOUNT:
        coupon = changes.coupon_for(percent_off=terms["percent_off"], months=terms["months"])
        return ChangeKind.DISCOUNT, changes.discount_params(coupon_id=coupon["id"]), coupon
    params = changes.downgrade_params(subscription=subscription, price_id=terms["price_id"])
    return ChangeKind.DOWNGRADE, params, {}


@transaction.atomic
def cancel_session_decide(*, session_id: int, choice: str) -> CancelSession:
    """Accept the offer shown ("accept") or cancel at the period's end ("cancel"), once: the stored change is what
    the caller sends next (changes.change_send, after this commits). A session already decided is returned as it
    is, whatever the second choice was."""
    session = CancelSession.objects.select_for_update().select_related("subscription").get(pk=session_id)
    if session.outcome:
        return session
    if not session.reason:
        raise CancelSessionRefused("Tell us why first.")
    if choice == "accept" and not session.offer_shown:
        raise CancelSessionRefused("There is no offer to accept.")
    if choice not in ("accept", "cancel"):
        raise CancelSessionRefused("Choose to accept the offer or to cancel.")
    if choice == "cancel" and cancel_refusal(session.subscription):
        raise CancelSessionRefused(cancel_refusal(session.subscription))
    kind, params, coupon = _change_for(session, choice)
    session.change = changes.change_request(
        subscription=session.subscription,
        kind=kind,
        params=params,
        coupon=coupon,
        idempotency_key=f"cancel-session:{session.pk}:{kind}",
    )
    session.outcome = CancelOutcome.ACCEPTED if choice == "accept" else CancelOutcome.CANCELED
    session.decided_at = timezone.now()
    session.save(update_fields=["change", "outcome", "decided_at"])
    return session
