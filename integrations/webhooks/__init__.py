"""Incoming webhooks, every provider: the base view (views.py), the store and its retry (store.py), the admin
base (admin.py). Each provider sits on it from its own package (integrations/mautic/, integrations/resend/,
billing/stripe_webhook/, support/views.py for Discord interactions)."""
