"""Resend (resend.com): anymail's backend with idempotency keys, and a client for the batch endpoint."""
