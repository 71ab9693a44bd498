"""Writes of the automations app, one module per domain (in the manner of Zulip's zerver/actions): enrollments and
their policy, campaigns' stage moves, queue items, suppressions and unsubscribe, tracking events, rules and steps,
staff test sends. Sending (claiming, calling the provider, recording the answer) is in automations.drain,
batch_claim and batch_outcome. Import from the module: this package re-exports nothing.
"""
