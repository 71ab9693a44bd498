"""Turning the current Stripe state into CRM records, timeline entries, lifecycle moves and domain events.

One module per Stripe object: `subscriptions` (and `subscription_cancellations`), `invoices`, `disputes`,
`checkouts`, `crm_customers` (the Stripe customer's CRM side); `facts` records one fact for all of them.

Every function here takes the *current* state of a Stripe object (re-fetched by dj-stripe for a webhook, or listed
by the daily sync) and compares it with what the CRM last stored, under a row lock. What changed becomes a fact
(created, status changed, cancel scheduled, canceled, payment failed, ...). Each fact has an idempotency key built
from Stripe ids and the Stripe state that makes it true, never from the event that told us:

    subscription:<sub_id>:created
    subscription:<sub_id>:status:<from>:<to>:<item current_period_start>
    subscription:<sub_id>:cancel-scheduled:<cancel_at>      subscription:<sub_id>:cancel-unscheduled:<cancel_at>
    subscription:<sub_id>:canceled
    subscription:<sub_id>:trial-will-end:<trial_end>
    invoice:<in_id>:payment-failed:<attempt_count>          invoice:<in_id>:payment-recovered
    invoice:<in_id>:paid
    dispute:<dp_id>:opened
    checkout-session:<cs_id>:completed

The same key is the timeline event's source_key, the domain event's key and the stage move's source_key, so a fact
found by a webhook and again by the sync (in either order), or by two workers at once, is recorded exactly once.
Because we compare with the current state, an old event processed after a newer one finds nothing to change.
"""
