"""Staff actions on one customer's email, for the customer 360 page (backoffice.staff_actions calls these).

Kept apart from automations.services so the queue's own services stay readable; like them, these are the only
writers of the rows they touch.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from .drain_control import queue_process_enqueue
from .models import EmailQueueItem, EnrollmentStatus, QueueStatus, Suppression
from .services.enrollment_policy import queue_item_key
from .services.queue_items import queue_items_retry_now


class ResendRefused(Exception):
    """An email that cannot be sent again: suppressed, still waiting, or its sequence was stopped."""


# A copy of an email that went out (or may have) is a new queue item of the same step, told apart by its occurrence.
RESENDABLE = (QueueStatus.SENT, QueueStatus.UNCONFIRMED, QueueStatus.CANCELLED)


def resend_due_at(item: EmailQueueItem, *, send_now: bool = False, now=None):
    """When a resend of `item` goes out. A cancelled email never went out: it goes back to its own time in its
    sequence (a cancelled "a month since your server stopped" must not overtake step 2), unless that time has
    passed or staff explicitly chose to send it now. A sent, unconfirmed or failed email is sent again now."""
    now = now or timezone.now()
    if item.status == QueueStatus.CANCELLED and not send_now and item.scheduled_at > now:
        return item.scheduled_at
    return now


def resend_ahead_of_time(item: EmailQueueItem, *, now=None) -> bool:
    """Whether sending `item` now would put it ahead of its own time (what "Send now" must say it does)."""
    return item.status == QueueStatus.CANCELLED and item.scheduled_at > (now or timezone.now())


@transaction.atomic
def queue_item_resend(*, item_id: int, key: str, send_now: bool = False) -> EmailQueueItem:
    """Send one email of a customer again. A failed email is put back in the queue, due now (its own key); one that
    was sent, cancelled or whose outcome is unknown gets a copy whose idempotency key ends with `key` (the caller's
    own id, e.g. `staff-action-<id>`), so asking twice with one key queues one copy and the second ask is refused.
    The copy is due now, except for a cancelled email whose own time is still ahead: it goes back to that time
    unless `send_now` (`resend_due_at`).

    A copy needs its sequence running: a completed enrollment is reopened until the copy has gone (the queue completes
    it again), an exited one (the customer left the sequence, e.g. their payment recovered) refuses.
    """
    item = EmailQueueItem.objects.select_for_update().select_related("enrollment", "customer").get(pk=item_id)
    if item.status == QueueStatus.FAILED:
        if not queue_items_retry_now(item_ids=[item.pk]):
            raise ResendRefused("This email's step is retired: it cannot be sent again.")
        item.refresh_from_db()
        return item
    if item.status not in RESENDABLE:
        raise ResendRefused(f"This email is {item.get_status_display().lower()}: nothing to resend.")
    enrollment = item.enrollment
    if enrollment.status == EnrollmentStatus.EXITED:
        raise ResendRefused(f"The customer left this sequence ({enrollment.exit_reason}): enroll them again instead.")
    if not item.customer.email:
        raise ResendRefused("The customer has no email address.")
    now = timezone.now()
    due = resend_due_at(item, send_now=send_now, now=now)
    occurrence = f"{item.occurrence}:resend:{key}" if item.occurrence else f"resend:{key}"
    if enrollment.status == EnrollmentStatus.COMPLETED:
        enrollment.status, enrollment.completed_at = EnrollmentStatus.ACTIVE, None
        try:
            with transaction.atomic():
                enrollment.save(update_fields=["status", "completed_at"])
        except IntegrityError:
            raise ResendRefused("The same sequence is running again for this customer: it sends its own.") from None
    copy, created = EmailQueueItem.objects.get_or_create(
        enrollment=enrollment,
        step=item.step,
        occurrence=occurrence[:255],
        defaults={
            "customer": item.customer,
            "recipient": item.customer.email,
            "scheduled_at": due,
            "next_attempt_at": due,
            "idempotency_key": queue_item_key(
                enrollment_id=enrollment.pk, step_id=item.step_id, occurrence=occurrence[:255]
            ),
        },
    )
    if not created:
        # The same key again is the same request again (a double click): it was queued once; say so, act no more.
        raise ResendRefused("This resend was queued already (the same request arrived twice).")
    if due <= now:
        transaction.on_commit(queue_process_enqueue)
    return copy


@transaction.atomic
def suppression_lift(*, suppression_id: int) -> Suppression | None:
    """Remove one suppression (the address may receive that kind of email again). None when it was already gone."""
    suppression = Suppression.objects.select_for_update().filter(pk=suppression_id).first()
    if suppression is None:
        return None
    suppression.delete()
    return suppression
