"""One ticket opening at a time per Discord user, so the per-user cap holds under simultaneous submits.

The cap (DISCORD_MAX_OPEN_TICKETS_PER_USER) is a count over several rows, which no unique constraint can express:
checked and then inserted, five simultaneous submits made four open tickets against a cap of three. A transaction-level
PostgreSQL advisory lock keyed on the user makes the count-then-insert of one user's openings run one after the
other, in every web process; it is released when the opening's transaction ends (commit or rollback), and users do
not wait for each other. https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
"""

from django.db import connection, transaction

# pg_advisory_xact_lock(namespace, key): the namespace keeps these locks apart from the project's other advisory locks
# (automations/drain_control.py, integrations/workflows/contact_invite.py).
TICKET_OPEN_LOCK_NAMESPACE = 0x5450  # "TP"


def ticket_open_lock(*, discord_user_id: str) -> None:
    """Wait until no other transaction is opening a ticket for this user; held until this transaction ends."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ticket_open_lock must run inside the opening's transaction")
    with connection.cursor() as cursor:
        # hashtext: an int4 key from the id; two users sharing a hash only wait for each other a moment.
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [TICKET_OPEN_LOCK_NAMESPACE, discord_user_id])
