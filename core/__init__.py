"""Shared pieces with no domain of their own, importable by every app (the ground under `customers`).

Nothing here imports a project app. See docs/ARCHITECTURE.md, "The floors".
"""
