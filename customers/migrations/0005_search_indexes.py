"""Indexes for the API's customer search (`?search=`): contains-matches on email and name, exact external ids.

DRF's `icontains` compiles on PostgreSQL to `UPPER(col::text) LIKE UPPER('%term%')`; a pg_trgm GIN index on exactly
that expression serves it (and the admin's search, which uses the same lookup). PostgreSQL only: SQLite (the local run,
bin/run) has no trigram indexes, and the operation does nothing there. The external ids are matched exactly
(api.filters.IndexedSearchFilter); Stripe's has its unique index, Discord's and Mautic's their partial indexes, and
EspoCRM's gets one here, so a search is a bitmap OR of index scans instead of a scan of the table.
"""

from django.db import migrations, models

TRIGRAM_INDEXES = {
    "customer_email_trgm_idx": "email",
    "customer_name_trgm_idx": "name",
}


def trigram_indexes_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "customers_customer" '
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def trigram_indexes_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("customers", "0004_dispatch_wakeup")]

    operations = [
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(
                condition=models.Q(("espocrm_lead_id", ""), _negated=True),
                fields=["espocrm_lead_id"],
                name="customer_espocrm_idx",
            ),
        ),
        migrations.RunPython(trigram_indexes_create, trigram_indexes_drop, elidable=False),
    ]
