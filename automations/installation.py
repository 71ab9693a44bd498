"""This installation's own id, the namespace of every idempotency key we send to the email provider.

A provider remembers an idempotency key for the whole account, whoever sent it (Resend: 24 hours per team). Our
keys come from our ids (`email-batch:<id>`, `email:enrollment-<id>:step-<id>`), and another database counts the same
ids: a staging deployment sending through the same provider account, or a second install, would reuse
`email-batch:41` with another payload, and the provider refuses it as a key conflict (the batch's emails become
"Outcome unknown"). So every key goes out as `<installation id>:<key>`.

The id is made once, by migration `0013_installation_id` at the first `migrate`, and kept in the database: a restore
of this database keeps it (retries of batches stored before the backup go out under the keys the provider knows), a
fresh install (staging) makes its own. The prefix is never random per call: keys stay derived from our ids.
"""

import hashlib
import secrets

from django.db import models

MAX_PROVIDER_KEY_LENGTH = 256  # the shortest limit of our providers (integrations/resend/backend.py)


def new_installation_id() -> str:
    return f"mr-{secrets.token_hex(6)}"  # "mr-" and 12 hex characters: 48 random bits, plenty for a handful of installs


class Installation(models.Model):
    """One row: made by the data migration, never edited (shown read-only nowhere; the provider's log shows it)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    installation_id = models.CharField(max_length=40, unique=True, default=new_installation_id)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "automations"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="installation_single_row")]

    def __str__(self) -> str:
        return self.installation_id


_cached: str | None = None


def installation_id() -> str:
    """The id, read once per process (it never changes while the database stays the same). A database emptied by a
    test's flush gets a new row."""
    global _cached
    if _cached is None:
        _cached = Installation.objects.get_or_create(id=1)[0].installation_id
    return _cached


def installation_id_forget() -> None:
    """Read the id from the database again (tests that stand for another install, or a restore)."""
    global _cached
    _cached = None


def provider_idempotency_key(key: str) -> str:
    """`key` as sent to the provider: namespaced by this installation, and never longer than it accepts."""
    namespaced = f"{installation_id()}:{key}"
    if len(namespaced) <= MAX_PROVIDER_KEY_LENGTH:
        return namespaced
    return f"{installation_id()}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
