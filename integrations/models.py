"""Integrations keep no tables of their own yet; each outside system has a client package here."""
