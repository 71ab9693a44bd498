from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .idempotency import idempotency_records_delete_older_than


def idempotency_records_expire() -> int:
    return idempotency_records_delete_older_than(
        before=timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_KEY_HOURS)
    )
