"""Sending through Django's EMAIL_BACKEND: the second email transport on the seam (integrations/email_transport.py).

Locally it writes into the outbox (devtools.outbox), in tests into locmem; the Resend transport uses its message
building for single sends through anymail's backend.
"""
