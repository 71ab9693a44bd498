"""Suppressions and unsubscribe: the addresses never written to, and the signed links that add to them."""

import functools
import logging
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.signed_ids import id_token_make, id_token_read
from customers.consent import customer_marketing_set, customer_topic_set
from customers.models import ConsentSource
from customers.selectors import customer_get_by_email
from customers.services import normalize_email, timeline_event_record

from ..models import (
    EmailQueueItem,
    Suppression,
    SuppressionReason,
)

logger = logging.getLogger(__name__)


UNSUBSCRIBE_SALT = "automations.unsubscribe"  # the first links, which carried the address (still read)


UNSUBSCRIBE_LINK_SALT = "automations.unsubscribe.item"


@transaction.atomic
def suppression_add(
    *, email: str, reason: str, queue_item: EmailQueueItem | None = None, note: str = ""
) -> tuple[Suppression, bool]:
    email = normalize_email(email)
    try:
        with transaction.atomic():
            return Suppression.objects.create(email=email, reason=reason, queue_item=queue_item, note=note[:300]), True
    except IntegrityError:
        return Suppression.objects.get(email=email, reason=reason), False


@transaction.atomic
def unsubscribe_lift(*, email: str) -> bool:
    """The customer's own unsubscribe from an old link, taken back by them (the preference page's "join again").
    Bounces, complaints and staff's suppressions stay. Returns whether there was one."""
    deleted, _ = Suppression.objects.filter(email=normalize_email(email), reason=SuppressionReason.UNSUBSCRIBE).delete()
    return bool(deleted)


def unsubscribe_token_make(*, queue_item_id: int) -> str:
    """The token of one email's unsubscribe link: that email's id, signed. Opaque (no address in it), the same every
    time it is made (a batch re-sent under its idempotency key carries the same bytes) and without expiry (a link in
    an old email must keep working)."""
    return id_token_make(salt=UNSUBSCRIBE_LINK_SALT, id=queue_item_id)


def unsubscribe_token_read(*, token: str) -> dict[str, Any] | None:
    """{"e": address, "q": queue item id or None} for a token of ours, else None.

    Tokens sent before the links became opaque (signing.dumps of {"e": address, "q": id}, salt UNSUBSCRIBE_SALT)
    are in emails already delivered and keep working."""
    item_id = id_token_read(salt=UNSUBSCRIBE_LINK_SALT, token=token)
    if item_id is not None:
        recipient = EmailQueueItem.objects.filter(pk=item_id).values_list("recipient", flat=True).first()
        return {"e": normalize_email(recipient), "q": item_id} if recipient else None
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except (signing.BadSignature, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("e"), str) and data["e"] else None


def unsubscribe_url(*, queue_item_id: int | None = None, email: str = "") -> str:
    """The unsubscribe link of one email. Without a queue item (a preview, a test send to staff) the link is a
    placeholder that unsubscribes nobody: a staff member clicking it in a test email must not unsubscribe the
    customer whose data filled the preview. `email` is accepted for callers' convenience and never put in the link."""
    token = unsubscribe_token_make(queue_item_id=queue_item_id) if queue_item_id is not None else "preview"
    return settings.SITE_URL + _unsubscribe_path().replace("TOKEN", token)


@functools.cache
def _unsubscribe_path() -> str:
    # Resolved once: reverse() per email costs more than signing the token, for the same answer every time.
    from django.urls import reverse

    return reverse("automations:unsubscribe", args=["TOKEN"])


@transaction.atomic
def email_unsubscribe(*, token: str, source: str = ConsentSource.UNSUBSCRIBE_PAGE) -> Suppression | None:
    """Record an unsubscribe from all marketing from a signed link (idempotent): a suppression of the address, and
    the customer's consent off with its consent record. None for a token that is not ours."""
    data = unsubscribe_token_read(token=token)
    if data is None:
        return None
    email = data["e"]
    item = (
        EmailQueueItem.objects.select_related("customer").filter(pk=data.get("q"), recipient__iexact=email).first()
        if data.get("q")
        else None
    )
    suppression, created = suppression_add(email=email, reason=SuppressionReason.UNSUBSCRIBE, queue_item=item)
    now = timezone.now()
    if item is not None and item.unsubscribed_at is None:
        EmailQueueItem.objects.filter(pk=item.pk, unsubscribed_at__isnull=True).update(unsubscribed_at=now)
    customer = item.customer if item is not None else customer_get_by_email(email=email)
    if customer is not None:
        details = {"queue_item_id": item.pk} if item is not None else {}
        customer_marketing_set(customer=customer, opt_in=False, source=source, details=details)
    if customer is not None and created:
        timeline_event_record(
            customer=customer,
            source="email",
            source_key=f"unsubscribe:{email}:{suppression.pk}",
            kind="email.unsubscribed",
            occurred_at=now,
            summary="Unsubscribed from marketing emails",
            payload={"email": email, "queue_item_id": item.pk if item else None},
            object_type="email.queue_item" if item else "",
            object_id=str(item.pk) if item else "",
        )
    return suppression


@transaction.atomic
def email_unsubscribe_one_click(*, token: str) -> str | None:
    """RFC 8058 one-click (the mail app's List-Unsubscribe-Post): leave the topic of the email the link came in.
    Returns the topic's name; "" when that email has no topic (an old link, or one without its email), which leaves
    all marketing as before; None for a token that is not ours. Repeating it changes nothing more."""
    data = unsubscribe_token_read(token=token)
    if data is None:
        return None
    item = (
        EmailQueueItem.objects.select_related("customer", "step__template", "step__rule__topic")
        .filter(pk=data.get("q"), recipient__iexact=data["e"])
        .first()
        if data.get("q")
        else None
    )
    topic = item.step.rule.topic if item is not None and item.step.template.category == "marketing" else None
    if topic is None:
        email_unsubscribe(token=token, source=ConsentSource.ONE_CLICK)
        return ""
    customer_topic_set(
        customer=item.customer,
        topic=topic,
        subscribed=False,
        source=ConsentSource.ONE_CLICK,
        details={"queue_item_id": item.pk},
    )
    EmailQueueItem.objects.filter(pk=item.pk, unsubscribed_at__isnull=True).update(unsubscribed_at=timezone.now())
    return topic.name
