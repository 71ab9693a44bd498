"""Writes of the webhooks app: endpoints, deliveries from domain events, sending and its outcome, replay.

Sending follows Standard Webhooks (https://www.standardwebhooks.com/): POST of `{type, timestamp, data}` with the
`webhook-id`, `webhook-timestamp` and `webhook-signature` headers; any 2xx is success, a redirect is a failure (never
followed), 410 disables the endpoint, anything else is retried on the spec's schedule with jitter, later if the
receiver asks with Retry-After. Sends to one endpoint about one customer go in order of their `sequence`: a delivery
waits while an earlier one for the same customer is still pending, so the panel never sees "churned" after
"purchase" when the churn came first. A delivery that gives up stops blocking the ones after it.
"""

import json
import logging
import random
import time
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers import events as domain_events
from customers.models import DomainEvent
from integrations.http import retry_after_seconds

from .addresses import UnsafeWebhookUrl, target_resolve, url_check
from .models import EVENT_TYPES, DeliveryStatus, OutboundDelivery, WebhookAttempt, WebhookEndpoint
from .signing import secret_generate, signature
from .transport import DeadlinePassed, post_within_deadline

logger = logging.getLogger(__name__)

# The spec's suggested schedule, after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
JITTER = 0.1  # +-10 %, so endpoints that failed together are not retried in one burst
# What an attempt says until its outcome is written: a worker killed mid-call (the task timeout, a deploy) leaves it.
INTERRUPTED = "No outcome: the send was interrupted before it finished (the worker stopped)."

STAGE_EVENT_TYPES = {
    "purchase": "customer.purchase",
    "at_risk": "customer.at_risk",
    "churned": "customer.churned",
    "win_back": "customer.win_back",
}

# The subscription changes the provisioning panel acts on (a pause suspends the server with its data kept; its end
# starts it again; a plan change resizes it).
SUBSCRIPTION_EVENT_TYPES = {
    domain_events.SUBSCRIPTION_PAUSED: "subscription.paused",
    domain_events.SUBSCRIPTION_RESUMED: "subscription.resumed",
    domain_events.SUBSCRIPTION_CANCEL_SCHEDULED: "subscription.cancellation_scheduled",
    domain_events.SUBSCRIPTION_PLAN_CHANGED: "subscription.plan_changed",
}

# --- endpoints --------------------------------------------------------------------------------------------------------


@transaction.atomic
def endpoint_create(*, url: str, event_types: list[str], description: str = "") -> WebhookEndpoint:
    """Register an endpoint with a new secret (the caller shows it once). Raises UnsafeWebhookUrl, ValueError."""
    url_check(url)
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"Unknown event types: {unknown}")
    return WebhookEndpoint.objects.create(
        url=url, event_types=list(event_types), description=description, secret=secret_generate()
    )


@transaction.atomic
def endpoint_rotate_secret(*, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    endpoint.secret = secret_generate()
    endpoint.save(update_fields=["secret", "updated_at"])
    return endpoint


@transaction.atomic
def endpoint_disable(*, endpoint_id: int, reason: str) -> int:
    """Stop sending to an endpoint and cancel what is waiting for it. Returns how many deliveries were cancelled."""
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(
        enabled=False, disabled_reason=reason[:300], updated_at=timezone.now()
    )
    return OutboundDelivery.objects.filter(endpoint_id=endpoint_id, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.CANCELLED, last_error=reason[:2000], lease_expires_at=None
    )


# --- deliveries from domain events -----------------------------------------------------------------------------------


def event_type_for(event: DomainEvent) -> str | None:
    if event.name == domain_events.CUSTOMER_STAGE_CHANGED:
        if (event.payload.get("from"), event.payload.get("to")) == ("win_back", "churned"):
            return None  # a win-back campaign ended without a return: nothing ended that the panel has not heard of
        return STAGE_EVENT_TYPES.get(event.payload.get("to", ""))
    if event.name == domain_events.PAYMENT_FAILED:
        return "payment.failed"
    if event.name == domain_events.PAYMENT_RECOVERED:
        return "payment.recovered"
    return SUBSCRIPTION_EVENT_TYPES.get(event.name)


def message_body(*, event_type: str, event: DomainEvent) -> str:
    """The Standard Webhooks payload; `data` is documented in webhooks/schema.py (and so in the OpenAPI schema)."""
    customer = event.customer
    payload = {
        "type": event_type,
        "timestamp": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "data": {
            "sequence": event.pk,
            "customer": {
                "id": customer.pk,
                "email": customer.email,
                "stripe_customer_id": customer.stripe_customer_id,
                "discord_user_id": customer.discord_user_id,
                "lifecycle_stage": customer.lifecycle_stage,
            },
            "details": event.payload,
        },
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str)


@transaction.atomic
def deliveries_create_for_event(*, event: DomainEvent) -> list[OutboundDelivery]:
    """One delivery per enabled endpoint subscribed to the event's type. Safe to run twice for the same event."""
    event_type = event_type_for(event)
    if event_type is None:
        return []
    # A handful of endpoints: filter the subscribed types here (SQLite, the local run, has no JSON `contains`).
    endpoints = [e for e in WebhookEndpoint.objects.filter(enabled=True) if event_type in (e.event_types or [])]
    if not endpoints:
        return []
    body = message_body(event_type=event_type, event=event)
    created = []
    now = timezone.now()
    for endpoint in endpoints:
        try:
            with transaction.atomic():
                delivery = OutboundDelivery.objects.create(
                    endpoint=endpoint,
                    customer_id=event.customer_id,
                    domain_event=event,
                    event_type=event_type,
                    message_id=f"msg_modready_{event.pk}",
                    sequence=event.pk,
                    body=body,
                    next_attempt_at=now,
                )
        except IntegrityError:
            continue
        created.append(delivery)
    for delivery in created:
        transaction.on_commit(lambda pk=delivery.pk: delivery_send_enqueue(delivery_id=pk))
    return created


def delivery_send_enqueue(*, delivery_id: int) -> None:
    """Side effect: call only from on_commit or outside a transaction."""
    from django_q.tasks import async_task

    async_task("webhooks.tasks.webhook_delivery_send_task", delivery_id, task_name=f"webhook-delivery:{delivery_id}")


# --- sending ----------------------------------------------------------------------------------------------------------


def _claim(*, delivery_id: int) -> tuple[OutboundDelivery, WebhookAttempt] | None:
    """Take a due delivery whose predecessors for the same customer are done, and record the attempt about to be
    made; None if it is not ours to send now."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            OutboundDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if delivery is None or (delivery.lease_expires_at and delivery.lease_expires_at > now):
            return None
        if not delivery.endpoint.enabled:
            delivery.status = DeliveryStatus.CANCELLED
            delivery.save(update_fields=["status"])
            return None
        waiting_on_earlier = OutboundDelivery.objects.filter(
            endpoint_id=delivery.endpoint_id,
            customer_id=delivery.customer_id,
            sequence__lt=delivery.sequence,
            status=DeliveryStatus.PENDING,
        ).exists()
        if waiting_on_earlier:
            return None  # sent when the earlier one finishes (delivery_record enqueues the next in line)
        if delivery.attempts > len(RETRY_SCHEDULE):
            # Every attempt of the schedule was made and the last one never reported back (its worker was killed).
            _give_up(delivery, now=now, error=f"Gave up after {delivery.attempts} attempts; the last was interrupted.")
            return None
        # The attempt counts before the call: a worker killed mid-call (task timeout, deploy) still used it up, and the
        # delivery comes back at its next time on the schedule, once the lease has expired, never sooner.
        lease = now + timedelta(seconds=settings.WEBHOOKS_TIMEOUT + 30)
        delivery.attempts += 1
        delay = retry_delay(attempts=delivery.attempts, retry_after=None)
        delivery.next_attempt_at = max(lease, now + timedelta(seconds=delay)) if delay is not None else lease
        delivery.lease_expires_at = lease
        delivery.save(update_fields=["attempts", "next_attempt_at", "lease_expires_at"])
        return delivery, WebhookAttempt.objects.create(delivery=delivery, attempted_at=now, error=INTERRUPTED)


def _post(delivery: OutboundDelivery) -> dict[str, Any]:
    """One send within one wall-clock deadline (WEBHOOKS_TIMEOUT: connect plus the whole answer)."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(
            secret=delivery.endpoint.secret, message_id=delivery.message_id, timestamp=timestamp, body=delivery.body
        ),
    }
    started = time.monotonic()
    outcome: dict[str, Any] = {"status_code": None, "response_body": "", "error": "", "retry_after": None}
    deadline = settings.WEBHOOKS_TIMEOUT
    try:
        # Resolved and checked once; the session connects to that very address (no second lookup to rebind).
        target = target_resolve(delivery.endpoint.url)
        answer = post_within_deadline(
            target=target, url=delivery.endpoint.url, body=delivery.body.encode(), headers=headers, seconds=deadline
        )
        outcome["status_code"] = answer.status_code
        outcome["response_body"] = answer.body
        outcome["error"] = answer.note
        outcome["retry_after"] = retry_after_seconds(answer)
    except UnsafeWebhookUrl as exc:
        outcome["error"] = f"Refused: {exc}"
    except DeadlinePassed:
        outcome["error"] = f"Timeout: no answer within {deadline:g} s (the deadline for connecting and reading)"
    except requests.RequestException as exc:
        outcome["error"] = f"{type(exc).__name__}: {exc}"[:2000]
    outcome["duration_ms"] = int((time.monotonic() - started) * 1000)
    return outcome


def retry_delay(*, attempts: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones; None when the schedule is over."""
    if attempts > len(RETRY_SCHEDULE):
        return None
    delay = RETRY_SCHEDULE[attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_SCHEDULE[-1]))
    return delay


@transaction.atomic
def delivery_record(
    *, delivery_id: int, outcome: dict[str, Any], lease: datetime | None = None, attempt_id: int | None = None
) -> OutboundDelivery:
    """Log the attempt and decide: done, retry later, give up, or disable the endpoint (410).

    `attempt_id` is the attempt `_claim` recorded (and counted) before the call; its outcome is written into it.
    `lease` is the one the sending worker took. A call that outlived it (a receiver trickling its answer past the
    lease) may have been sent again by another worker meanwhile: its attempt is still logged, but it no longer
    decides the delivery's status, attempts or what is sent next; the worker holding the current lease does.
    """
    now = timezone.now()
    delivery = OutboundDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery_id)
    code = outcome["status_code"]
    logged = {
        "status_code": code,
        "duration_ms": outcome.get("duration_ms", 0),
        "response_body": outcome.get("response_body", ""),
        "error": outcome.get("error", ""),
    }
    if attempt_id is not None:
        WebhookAttempt.objects.filter(pk=attempt_id).update(**logged)
    else:
        WebhookAttempt.objects.create(delivery=delivery, attempted_at=now, **logged)
    if lease is not None and (delivery.status != DeliveryStatus.PENDING or delivery.lease_expires_at != lease):
        return delivery
    if attempt_id is None:
        delivery.attempts += 1
    delivery.lease_expires_at = None
    delivery.last_status_code = code
    if code is not None and 200 <= code < 300:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.delivered_at = now
        delivery.last_error = ""
    elif code == 410:
        delivery.status = DeliveryStatus.CANCELLED
        delivery.last_error = "410 Gone: the endpoint was disabled"
        delivery.save()
        endpoint_disable(endpoint_id=delivery.endpoint_id, reason=f"Answered 410 Gone at {now:%Y-%m-%d %H:%M} UTC")
        return delivery
    else:
        if code is not None and 300 <= code < 400:
            error = f"Redirect ({code}) not followed"
        else:
            error = outcome.get("error") or f"HTTP {code}"
        delay = retry_delay(attempts=delivery.attempts, retry_after=outcome.get("retry_after"))
        if delay is None:
            _give_up(delivery, now=now, error=error)
            return delivery
        delivery.last_error = error
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        delivery.save()
        return delivery
    delivery.save()
    transaction.on_commit(
        lambda: next_in_line_enqueue(endpoint_id=delivery.endpoint_id, customer_id=delivery.customer_id)
    )
    return delivery


def _give_up(delivery: OutboundDelivery, *, now: datetime, error: str) -> None:
    """The schedule is over: the delivery fails, the next one in line goes, and an endpoint that has not accepted
    anything since this delivery's first attempt (about three days of failures) is disabled."""
    delivery.status = DeliveryStatus.FAILED
    delivery.last_error = error[:2000]
    delivery.lease_expires_at = None
    delivery.save()
    first_attempt = delivery.attempt_log.order_by("attempted_at").values_list("attempted_at", flat=True).first()
    accepted_since = OutboundDelivery.objects.filter(
        endpoint_id=delivery.endpoint_id, status=DeliveryStatus.SUCCEEDED, delivered_at__gte=first_attempt or now
    ).exists()
    if not accepted_since:
        days = (now - (first_attempt or now)).total_seconds() / 86400
        endpoint_disable(
            endpoint_id=delivery.endpoint_id,
            reason=(
                f"Disabled on {now:%Y-%m-%d %H:%M} UTC: nothing was accepted for {days:.1f} days; "
                f"{delivery.message_id} failed all {delivery.attempts} attempts (last error: {error})"
            )[:300],
        )
    transaction.on_commit(
        lambda: next_in_line_enqueue(endpoint_id=delivery.endpoint_id, customer_id=delivery.customer_id)
    )


def next_in_line_enqueue(*, endpoint_id: int, customer_id: int) -> None:
    following = (
        OutboundDelivery.objects.filter(endpoint_id=endpoint_id, customer_id=customer_id, status=DeliveryStatus.PENDING)
        .order_by("sequence")
        .values_list("pk", flat=True)
        .first()
    )
    if following:
        delivery_send_enqueue(delivery_id=following)


def delivery_send(*, delivery_id: int) -> OutboundDelivery | None:
    """Send one delivery if it is due and next in line. Safe to run twice and concurrently (claim + lease)."""
    claimed = _claim(delivery_id=delivery_id)
    if claimed is None:
        return None
    delivery, attempt = claimed
    outcome = _post(delivery)
    return delivery_record(
        delivery_id=delivery.pk, outcome=outcome, lease=delivery.lease_expires_at, attempt_id=attempt.pk
    )


def deliveries_due_ids(*, limit: int = 500) -> list[int]:
    """Pending deliveries whose time has come, oldest sequence first (retries, and enqueues a crash lost)."""
    return list(
        OutboundDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("sequence")
        .values_list("pk", flat=True)[:limit]
    )


@transaction.atomic
def deliveries_replay(*, delivery_ids: list[int]) -> int:
    """Send finished deliveries again, same id and body (staff replay from the admin). Returns how many."""
    now = timezone.now()
    replayed = list(
        OutboundDelivery.objects.filter(pk__in=delivery_ids, endpoint__enabled=True)
        .exclude(status=DeliveryStatus.PENDING)
        .values_list("pk", flat=True)
    )
    OutboundDelivery.objects.filter(pk__in=replayed).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, lease_expires_at=None, last_error=""
    )
    for pk in replayed:
        transaction.on_commit(lambda pk=pk: delivery_send_enqueue(delivery_id=pk))
    return len(replayed)


@transaction.atomic
def endpoint_update(*, endpoint: WebhookEndpoint, url: str, event_types: list[str], description: str, enabled: bool):
    url_check(url)
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"Unknown event types: {unknown}")
    endpoint.url, endpoint.event_types, endpoint.description = url, list(event_types), description
    if enabled and not endpoint.enabled:
        endpoint.disabled_reason = ""
    endpoint.enabled = enabled
    endpoint.save()
    return endpoint
