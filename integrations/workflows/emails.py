"""Sending a Mautic email at most once.

`POST /api/emails/{id}/contact/{contactId}/send` has no idempotency key, and Mautic offers no check we can rely on
for a transactional API send. So the send is marked before it is made (`email_requested_at`, committed: the workflows
run in autocommit), and:

- an answer saying it was not sent (200 with `success` false, a 4xx, a 429 that outlived our wait) clears the mark,
  so the retry sends;
- no answer (timeout, dropped connection) or a 5xx leaves the mark: Mautic may have sent it;
- a run that finds the mark without `emailed_at` does not send again. Its step is recorded `needs_review` with what
  staff should check, and the run stops in `needs_review` (not retried). Staff look at the contact's email history
  in Mautic and resolve it in the admin (integrations/workflows/review.py): "was sent" or "send it again".
"""

from collections.abc import Callable

from django.utils import timezone

from integrations.http import ProviderError
from integrations.models import StepOutcome
from integrations.runs import RunNeedsReview, StepRecorder


def may_have_acted(error: ProviderError) -> bool:
    return error.status == 0 or error.status >= 500


def email_send_once(recorder: StepRecorder, *, row, step: str, detail: str, send: Callable[[], None]) -> None:
    """Call `send` unless an earlier attempt may already have sent it. `row` has `email_requested_at` and
    `emailed_at`; the caller records `emailed_at` (and its own state) after this returns."""
    model = type(row)
    if row.email_requested_at is not None:
        message = (
            f"an earlier send at {row.email_requested_at:%Y-%m-%d %H:%M:%S} UTC got no answer, so Mautic may have sent "
            f"it; it is not sent again. Check the contact's email history in Mautic, then resolve it on the "
            f"{model._meta.verbose_name} in the admin (sent, or send again)."
        )
        recorder.record(step, StepOutcome.NEEDS_REVIEW, detail, timezone.now(), error=message)
        raise RunNeedsReview(f"{step}: {message}")
    row.email_requested_at = timezone.now()
    model.objects.filter(pk=row.pk).update(email_requested_at=row.email_requested_at)
    try:
        with recorder.step(step, detail=detail):
            send()
    except ProviderError as exc:
        if not may_have_acted(exc):
            row.email_requested_at = None
            model.objects.filter(pk=row.pk).update(email_requested_at=None)
        raise
