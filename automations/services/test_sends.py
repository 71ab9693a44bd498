"""The admin's "send me a test": a per-staff rate limit, and the failure noted on the reservation."""

import logging
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from ..models import (
    EmailTemplate,
    StaffTestSend,
)

logger = logging.getLogger(__name__)


TEST_SENDS_PER_MINUTE = 5


@transaction.atomic
def staff_test_send_reserve(*, user, template: EmailTemplate) -> StaffTestSend | None:
    """Record a test send for `user`, or None when they already sent TEST_SENDS_PER_MINUTE in the last minute.

    Counted in the database under a lock on the user's row, so the limit holds across web workers and concurrent
    requests (a per-process cache would let each worker allow its own five)."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    now = timezone.now()
    recent = StaffTestSend.objects.filter(user=user, sent_at__gt=now - timedelta(minutes=1)).count()
    if recent >= TEST_SENDS_PER_MINUTE:
        return None
    return StaffTestSend.objects.create(user=user, template=template, recipient=user.email, sent_at=now)


def staff_test_send_failed(*, test_send: StaffTestSend, error: str) -> None:
    StaffTestSend.objects.filter(pk=test_send.pk).update(error=error[:2000])
