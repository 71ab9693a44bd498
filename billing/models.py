"""Billing's own records: the CRM view of Stripe subscriptions. dj-stripe's tables mirror Stripe itself."""
