"""django-q2 entry points of the ticket page's work: take ids, call one run, safe to run twice."""

from . import close_requests, transcript_dm, workspace_discord


def ticket_post_send_task(post_id: int) -> str:
    return workspace_discord.ticket_post_send_run(post_id=post_id)


def close_request_post_task(request_id: int) -> str:
    return close_requests.close_request_post_run(request_id=request_id)


def transcript_dm_task(ticket_id: int) -> str:
    return transcript_dm.transcript_dm_run(ticket_id=ticket_id)


def close_requests_task() -> dict:
    """Schedule (every 5 minutes): close requests (post, cancel on a customer's message, close when due), then replies
    and transcript messages still waiting after a failed attempt."""
    counts = close_requests.close_requests_run()
    counts["replies_retried"] = workspace_discord.posts_retry_run()
    counts["transcripts_retried"] = transcript_dm.transcript_dms_retry_run()
    return counts
