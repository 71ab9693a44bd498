"""Staff actions on the email queue: retry failed emails now, cancel pending ones."""

import logging

from django.db import transaction
from django.utils import timezone

from ..drain_control import queue_process_enqueue
from ..models import (
    EmailQueueItem,
    QueueStatus,
)

logger = logging.getLogger(__name__)


@transaction.atomic
def queue_items_retry_now(*, item_ids: list[int]) -> int:
    """Put failed emails back in the queue, due now, with their attempt count reset."""
    now = timezone.now()
    count = (
        EmailQueueItem.objects.filter(pk__in=item_ids, status=QueueStatus.FAILED)
        .exclude(step__retired=True)
        .update(status=QueueStatus.PENDING, attempts=0, next_attempt_at=now, last_error="", batch=None, updated_at=now)
    )
    if count:
        transaction.on_commit(queue_process_enqueue)
    return count


@transaction.atomic
def queue_items_cancel(*, item_ids: list[int], reason: str = "Cancelled by staff") -> int:
    """Cancel emails that are still pending; anything already handed to the provider is left alone."""
    return EmailQueueItem.objects.filter(pk__in=item_ids, status=QueueStatus.PENDING).update(
        status=QueueStatus.CANCELLED, last_error=reason, updated_at=timezone.now()
    )
