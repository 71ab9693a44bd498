"""django-q2 entry points: safe to run twice, and several at once (claiming skips locked rows)."""

from .sending import email_queue_process


def email_queue_process_task() -> dict:
    result = email_queue_process()
    return {"sent": result.sent, "failed": result.failed, "suppressed": result.suppressed, "batches": result.batches}
