"""Stripe webhook deliveries: store fast, process later, exactly once per event id, on the one incoming-webhook
pipeline (integrations/webhooks/).

    view.py        verify the signature on the raw body (endpoint.py) -> parse -> store.stripe_event_receive():
                   dj-stripe WebhookEventTrigger row (every delivery) + StripeEventProcessing row (one per event id)
                   -> on commit: enqueue billing.tasks.stripe_event_process_task(event_id) -> 200
    processing.py  first, before any lock: dj-stripe's processing (Event row, re-fetch and sync of the object from
                   the Stripe API) and the handler's fetch (billing/stripe_api.py); then, in one transaction, lock the
                   processing row (SKIP LOCKED) and run the handler's apply, which reads the mirror and calls
                   billing.services. Failure: rolled back, error kept, retried with the one backoff (core/retry.py)
                   by the retry schedule (billing.tasks.stripe_events_retry_due).
    handlers.py    per event type a Handler(apply, fetch); HANDLERS maps the type to it.

Fetches from Stripe go through billing/stripe_api.py. The Stripe docs: https://docs.stripe.com/webhooks (signatures,
retries, duplicates, ordering).
"""
