"""django-q2 entry points: safe to run twice and concurrently (deliveries are claimed under a row lock and a lease)."""

from . import services


def webhook_delivery_send_task(delivery_id: int) -> str:
    delivery = services.delivery_send(delivery_id=delivery_id)
    return delivery.status if delivery else "not due, not next in line, or taken"


def webhook_deliveries_send_due() -> int:
    """Every minute: send the retries whose time has come, and anything a lost enqueue left behind."""
    due = services.deliveries_due_ids()
    for delivery_id in due:
        services.delivery_send_enqueue(delivery_id=delivery_id)
    return len(due)
