"""django-q2 entry points: safe to run twice, and several at once (claiming skips locked rows)."""

from .drain import email_queue_drain


def email_queue_process_task(woken: bool = False) -> dict:
    """The schedule's run and every wake-up (woken=True, from automations.drain_control.queue_process_enqueue)."""
    result = email_queue_drain(woken=woken)
    return {
        "sent": result.sent,
        "failed": result.failed,
        "suppressed": result.suppressed,
        "batches": result.batches,
        "paused": result.paused,
    }


def email_batches_resume_task() -> int:
    """Every minute: wake a drain for batches whose drain died (their lease ran out)."""
    from .drain_leases import abandoned_batches_resume

    return abandoned_batches_resume()
