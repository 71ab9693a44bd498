"""Stripe webhook deliveries: store fast, process later, exactly once per event id.

    receive (view)  -> verify signature on the raw body -> parse -> stripe_event_receive():
                       dj-stripe WebhookEventTrigger row (every delivery) + StripeEventProcessing row (one per event id)
                       -> on commit: enqueue billing.tasks.stripe_event_process_task(event_id) -> 200
    process (task)  -> stripe_event_process(): lock the processing row (SKIP LOCKED), run dj-stripe's processing
                       (Event row, re-fetch and sync of the object from the Stripe API), then our handlers, which read
                       the re-fetched state from dj-stripe's tables and call billing.services.
                       Failure: rolled back, error kept, retried with exponential backoff by the retry schedule.

The Stripe docs: https://docs.stripe.com/webhooks (signatures, retries, duplicates, ordering).
"""

import json
import logging
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta

import stripe
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from djstripe import models as djstripe_models
from djstripe.apps import __version__ as DJSTRIPE_VERSION
from djstripe.settings import djstripe_settings

from . import selectors
from .models import EventProcessingStatus, StripeEventProcessing
from .services import checkouts, crm_customers, disputes, invoices, subscriptions
from .stripe_objects import event_stripe_customer_id, invoice_subscription_id, object_id, timestamp_to_datetime

logger = logging.getLogger(__name__)

# A lost enqueue (a crash between commit and enqueue) is picked up by the retry schedule after this long.
PENDING_GRACE = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=6)


def webhook_endpoint_id() -> str:
    return settings.BILLING_WEBHOOK_ENDPOINT_ID


def webhook_endpoint_get() -> djstripe_models.WebhookEndpoint | None:
    return djstripe_models.WebhookEndpoint.objects.filter(id=webhook_endpoint_id()).first()


# The endpoint row is read on every delivery; keeping it for a few seconds per process takes a query off the ack
# path. A rotated secret reaches every worker within ENDPOINT_CACHE_SECONDS (Stripe retries what fails meanwhile).
ENDPOINT_CACHE_SECONDS = 30.0
_endpoint_cache: dict[str, tuple[float, djstripe_models.WebhookEndpoint]] = {}


def webhook_endpoint_cached() -> djstripe_models.WebhookEndpoint | None:
    now = time.monotonic()
    cached = _endpoint_cache.get("endpoint")
    if cached and cached[0] > now:
        return cached[1]
    endpoint = webhook_endpoint_get()
    if endpoint is not None:
        _endpoint_cache["endpoint"] = (now + ENDPOINT_CACHE_SECONDS, endpoint)
    return endpoint


def webhook_endpoint_cache_clear() -> None:
    _endpoint_cache.clear()


@transaction.atomic
def webhook_endpoint_configure(*, secret: str, url: str) -> tuple[djstripe_models.WebhookEndpoint, bool]:
    """Create or update dj-stripe's WebhookEndpoint row that holds the signing secret. Returns (endpoint, created)."""
    if not secret.startswith("whsec_"):
        raise ValueError("STRIPE_WEBHOOK_SECRET must be the endpoint's signing secret (whsec_...)")
    endpoint, created = djstripe_models.WebhookEndpoint.objects.update_or_create(
        id=webhook_endpoint_id(),
        defaults={
            "secret": secret,
            "url": url,
            "status": "enabled",
            "enabled_events": ["*"],
            "api_version": settings.STRIPE_API_VERSION,
            "livemode": settings.STRIPE_LIVE_MODE,
            "djstripe_tolerance": settings.BILLING_WEBHOOK_TOLERANCE,
            "djstripe_validation_method": "verify_signature",
        },
    )
    transaction.on_commit(webhook_endpoint_cache_clear)
    return endpoint, created


def signature_verify(*, payload: bytes, header: str, secret: str) -> bool:
    """Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]; HMAC-SHA256 over "<t>.<raw body>". Any v1 may match
    (secret rotation); the timestamp must be within the tolerance. https://docs.stripe.com/webhooks#verify-manually"""
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"), header, secret, settings.BILLING_WEBHOOK_TOLERANCE
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError, TypeError):
        # TypeError: hmac.compare_digest refuses non-ASCII text, which a forged header can carry.
        return False
    return True


def stripe_event_receive(
    *, body: str, event: dict, headers: dict, remote_ip: str, endpoint: djstripe_models.WebhookEndpoint
) -> tuple[str, bool]:
    """Store one verified delivery durably and enqueue its processing after commit (only the first delivery of an
    event id, or a redelivery of one whose processing failed). Returns (event id, first delivery).

    This is the hot path of the acknowledgement, so it is one SQL statement (atomic on its own): the delivery goes
    into dj-stripe's WebhookEventTrigger table (every delivery is kept) and the processing row is inserted with
    ON CONFLICT on the unique event id, so a duplicate delivery, even one racing the first on another worker, only
    counts itself. tests/billing/test_webhooks.py checks both rows through the ORM.
    """
    if connection.vendor != "postgresql":
        inserted, status = _delivery_store_portable(
            body=body, event=event, headers=headers, remote_ip=remote_ip, endpoint=endpoint
        )
    else:
        inserted, status = _delivery_store_postgresql(
            body=body, event=event, headers=headers, remote_ip=remote_ip, endpoint=endpoint
        )
    if inserted or status == EventProcessingStatus.FAILED:
        event_id = event["id"]
        transaction.on_commit(lambda: stripe_event_enqueue(event_id=event_id))
    return event["id"], inserted


def _delivery_store_postgresql(
    *, body: str, event: dict, headers: dict, remote_ip: str, endpoint: djstripe_models.WebhookEndpoint
) -> tuple[bool, str]:
    trigger_table = djstripe_models.WebhookEventTrigger._meta.db_table
    table = StripeEventProcessing._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH delivery AS (
                INSERT INTO {trigger_table} (remote_ip, headers, body, valid, processed, exception, traceback,
                                             djstripe_version, created, updated, webhook_endpoint_id)
                VALUES (%s, %s::jsonb, %s, true, false, '', '', %s, now(), now(), %s)
                RETURNING id
            )
            INSERT INTO {table} (event_id, event_type, event_created, stripe_customer_id, trigger_id, status,
                                 deliveries, attempts, next_attempt_at, last_error, received_at, updated_at)
            SELECT %s, %s, %s, %s, delivery.id, %s, 1, 0, %s, '', now(), now() FROM delivery
            ON CONFLICT (event_id) DO UPDATE SET deliveries = {table}.deliveries + 1, updated_at = now()
            RETURNING (xmax = 0) AS inserted, status
            """,  # noqa: S608 (the table names are the models', every value is a parameter)
            [
                remote_ip,
                json.dumps(headers),
                body,
                DJSTRIPE_VERSION,
                endpoint.id,
                event["id"],
                str(event.get("type", ""))[:128],
                timestamp_to_datetime(event.get("created")),
                event_stripe_customer_id(event),
                EventProcessingStatus.PENDING,
                timezone.now() + PENDING_GRACE,
            ],
        )
        inserted, status = cursor.fetchone()
    return inserted, status


@transaction.atomic
def _delivery_store_portable(
    *, body: str, event: dict, headers: dict, remote_ip: str, endpoint: djstripe_models.WebhookEndpoint
) -> tuple[bool, str]:
    """The same two rows through the ORM, for the local run on SQLite (no data-modifying CTE there)."""
    trigger = djstripe_models.WebhookEventTrigger.objects.create(
        remote_ip=remote_ip, headers=headers, body=body, valid=True, webhook_endpoint=endpoint
    )
    processing, created = StripeEventProcessing.objects.get_or_create(
        event_id=event["id"],
        defaults={
            "event_type": str(event.get("type", ""))[:128],
            "event_created": timestamp_to_datetime(event.get("created")),
            "stripe_customer_id": event_stripe_customer_id(event),
            "trigger": trigger,
            "next_attempt_at": timezone.now() + PENDING_GRACE,
        },
    )
    if not created:
        StripeEventProcessing.objects.filter(pk=processing.pk).update(deliveries=F("deliveries") + 1)
    return created, processing.status


_broker: list = []


def stripe_event_enqueue(*, event_id: str) -> None:
    from django_q.brokers import get_broker
    from django_q.tasks import async_task

    if not _broker:
        _broker.append(get_broker())  # one per process, not one per delivery

    def enqueue() -> None:
        async_task(
            "billing.tasks.stripe_event_process_task",
            event_id,
            task_name=f"stripe-event:{event_id}",
            broker=_broker[0],
        )

    if settings.Q_CLUSTER.get("sync") or not settings.Q_CLUSTER.get("orm") or connection.vendor != "postgresql":
        enqueue()
        return
    with transaction.atomic():
        # With the ORM broker the enqueue is a second commit on the ack path. It need not wait for its WAL flush:
        # the delivery itself was committed durably before, and a wake-up lost in a crash is found by the retry
        # schedule (stripe_events_due picks pending rows after PENDING_GRACE).
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        enqueue()


def stripe_event_process(*, event_id: str) -> str | None:
    """Process one stored event if it is pending or failed; returns the new status, or None when there was nothing
    to do (already processed, given up, or another worker holds it right now)."""
    with transaction.atomic():
        processing = (
            StripeEventProcessing.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("trigger")
            .filter(event_id=event_id, status__in=[EventProcessingStatus.PENDING, EventProcessingStatus.FAILED])
            .first()
        )
        if processing is None:
            return None
        trigger = processing.trigger
        now = timezone.now()
        processing.attempts += 1
        try:
            if trigger is None:
                raise RuntimeError("The stored delivery of this event is gone")
            with transaction.atomic():
                _process(json.loads(trigger.body))
        except Exception as exc:  # any failure: keep the error, retry later; the savepoint undid partial work
            logger.exception("Stripe event %s (%s) failed", event_id, processing.event_type)
            processing.last_error = f"{type(exc).__name__}: {exc}"[:4000]
            give_up = processing.attempts >= settings.BILLING_EVENT_MAX_ATTEMPTS
            processing.status = EventProcessingStatus.DEAD if give_up else EventProcessingStatus.FAILED
            backoff = min(MAX_BACKOFF, timedelta(minutes=2 ** (processing.attempts - 1)))
            processing.next_attempt_at = None if give_up else now + backoff
            if trigger is not None:
                trigger.exception = str(exc)[:128]
                trigger.traceback = traceback.format_exc()
                trigger.processed = False
                trigger.save(update_fields=["exception", "traceback", "processed", "updated"])
        else:
            processing.status = EventProcessingStatus.PROCESSED
            processing.processed_at = now
            processing.next_attempt_at = None
            processing.last_error = ""
            trigger.exception, trigger.traceback, trigger.processed = "", "", True
            trigger.event = djstripe_models.Event.objects.filter(id=event_id).first()
            trigger.save(update_fields=["exception", "traceback", "processed", "event", "updated"])
        processing.save()
        return processing.status


@transaction.atomic
def stripe_event_reprocess(*, event_id: str) -> bool:
    """From the admin: run an event's processing again (a failed, given-up or even processed one). Everything it
    records is keyed, so a second run changes nothing that the first already did."""
    updated = StripeEventProcessing.objects.filter(event_id=event_id).update(
        status=EventProcessingStatus.PENDING, next_attempt_at=timezone.now() + PENDING_GRACE
    )
    if updated:
        transaction.on_commit(lambda: stripe_event_enqueue(event_id=event_id))
    return bool(updated)


def _process(data: dict) -> None:
    """dj-stripe's processing (creates its Event, re-fetches and syncs the object), then our handler."""
    event = djstripe_models.Event.objects.filter(id=data["id"]).first()
    if event is None:
        event = djstripe_models.Event.process(data)
    else:
        # Reprocessing: dj-stripe's Event.process would return the stored Event without syncing anything.
        event.invoke_webhook_handlers()
    handler = HANDLERS.get(event.type)
    if handler is not None:
        handler(event, timestamp_to_datetime(data.get("created")) or timezone.now())


# --- our handlers: read the state dj-stripe just synced, call billing.services ------------------------------------


def _api_key() -> str:
    return djstripe_settings.STRIPE_SECRET_KEY


def djstripe_product_lookup(product_id: str) -> dict | None:
    """A product from dj-stripe's mirror, fetched and mirrored first if it is not there yet (one call per product)."""
    if not product_id:
        return None
    data = djstripe_models.Product.objects.filter(id=product_id).values_list("stripe_data", flat=True).first()
    if data is None:
        data = djstripe_models.Product._get_or_retrieve(id=product_id, api_key=_api_key()).stripe_data
    return data


def _djstripe_customer_data(customer_id: str) -> dict | None:
    if not customer_id:
        return None
    return djstripe_models.Customer.objects.filter(id=customer_id).values_list("stripe_data", flat=True).first()


def subscription_apply_from_djstripe(*, subscription_id: str, occurred_at: datetime | None = None):
    """Apply dj-stripe's synced copy of a subscription (fetching and syncing it first if dj-stripe lacks it)."""
    djsub = djstripe_models.Subscription.objects.filter(id=subscription_id).first()
    if djsub is None:
        djsub = djstripe_models.Subscription._get_or_retrieve(id=subscription_id, api_key=_api_key())
    data = djsub.stripe_data
    return subscriptions.subscription_apply_stripe_state(
        stripe_subscription=data,
        product_lookup=djstripe_product_lookup,
        stripe_customer=_djstripe_customer_data(object_id(data.get("customer"))),
        djstripe_subscription_pk=djsub.pk,
        occurred_at=occurred_at,
    )


def subscription_refresh_from_stripe(*, subscription_id: str, occurred_at: datetime | None = None):
    """Retrieve the subscription from Stripe (https://docs.stripe.com/api/subscriptions/retrieve), mirror it through
    dj-stripe and apply it to the CRM: the current state, whatever dj-stripe held before."""
    data = djstripe_models.Subscription.stripe_class.retrieve(
        id=subscription_id, api_key=_api_key(), stripe_version=settings.STRIPE_API_VERSION
    )
    djstripe_models.Subscription.sync_from_stripe_data(data, api_key=_api_key())
    return subscription_apply_from_djstripe(subscription_id=subscription_id, occurred_at=occurred_at)


def _on_subscription(event, occurred_at: datetime) -> None:
    subscription_id = event.data["object"]["id"]
    subscription_apply_from_djstripe(subscription_id=subscription_id, occurred_at=occurred_at)
    if event.type == "customer.subscription.trial_will_end":
        data = djstripe_models.Subscription.objects.get(id=subscription_id).stripe_data
        subscriptions.subscription_trial_will_end_record(stripe_subscription=data, occurred_at=occurred_at)


def _on_invoice(event, occurred_at: datetime) -> None:
    invoice = djstripe_models.Invoice.objects.filter(id=event.data["object"]["id"]).first()
    data = invoice.stripe_data if invoice else event.data["object"]
    subscription_id = invoice_subscription_id(data)
    if not subscription_id:
        return
    if data.get("status") == "open" and int(data.get("attempt_count") or 0) >= 1:
        # A failed attempt counts only while the subscription can still be saved, and the CRM may not know yet that
        # Stripe has canceled it (the customer.subscription.deleted of the last retry can come after this event, or
        # be waiting in another worker). Ask Stripe for the subscription's current state first: one call, only for
        # failures.
        subscription_refresh_from_stripe(subscription_id=subscription_id, occurred_at=occurred_at)
    elif selectors.subscription_get_by_stripe_id(stripe_subscription_id=subscription_id) is None:
        # The invoice event may arrive before (or instead of) the subscription's own: make sure the CRM has it.
        subscription_apply_from_djstripe(subscription_id=subscription_id, occurred_at=occurred_at)
    invoices.invoice_apply_stripe_state(stripe_invoice=data, occurred_at=occurred_at)


def _on_dispute(event, occurred_at: datetime) -> None:
    dispute = djstripe_models.Dispute.objects.filter(id=event.data["object"]["id"]).first()
    data = dispute.stripe_data if dispute else event.data["object"]
    charge_id = object_id(data.get("charge"))
    charge = djstripe_models.Charge.objects.filter(id=charge_id).values_list("stripe_data", flat=True).first()
    customer_id = object_id((charge or {}).get("customer"))
    disputes.dispute_opened_record(stripe_dispute=data, stripe_customer_id=customer_id, occurred_at=occurred_at)


def _on_checkout_completed(event, occurred_at: datetime) -> None:
    session = djstripe_models.Session.objects.filter(id=event.data["object"]["id"]).first()
    data = session.stripe_data if session else event.data["object"]
    # https://docs.stripe.com/api/checkout/sessions/line_items: dj-stripe retrieves the session with line_items
    # expanded; only a session with more items than that page holds needs its own call.
    expanded = data.get("line_items") or {}
    if expanded.get("data") is not None and not expanded.get("has_more"):
        items = expanded["data"]
    else:
        line_items = stripe.checkout.Session.list_line_items(
            data["id"],
            limit=100,
            expand=["data.price.product"],
            api_key=_api_key(),
            stripe_version=settings.STRIPE_API_VERSION,
        )
        items = [json.loads(str(item)) for item in line_items.auto_paging_iter()]
    checkouts.checkout_completed_record(
        stripe_session=data,
        line_items=items,
        product_lookup=djstripe_product_lookup,
        occurred_at=occurred_at,
        stripe_event_type=event.type,
    )


def _on_customer(event, occurred_at: datetime) -> None:
    obj = event.data["object"]
    if obj.get("object") != "customer":
        return
    data = _djstripe_customer_data(obj["id"]) or obj
    crm_customers.stripe_customer_apply(stripe_customer=data)


HANDLERS: dict[str, Callable] = {
    "customer.subscription.created": _on_subscription,
    "customer.subscription.updated": _on_subscription,
    "customer.subscription.deleted": _on_subscription,
    "customer.subscription.paused": _on_subscription,
    "customer.subscription.resumed": _on_subscription,
    "customer.subscription.trial_will_end": _on_subscription,
    "invoice.paid": _on_invoice,
    "invoice.payment_succeeded": _on_invoice,
    "invoice.payment_failed": _on_invoice,
    "charge.dispute.created": _on_dispute,
    "checkout.session.completed": _on_checkout_completed,
    "checkout.session.async_payment_succeeded": _on_checkout_completed,
    "customer.created": _on_customer,
    "customer.updated": _on_customer,
}
