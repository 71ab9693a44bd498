import json

from django.db import migrations, models


def backfill_stripe_customer_ids(apps, schema_editor):
    """Events received before the column existed: their Stripe customer from the stored delivery body."""
    from billing.stripe_objects import event_stripe_customer_id

    processing = apps.get_model("billing", "StripeEventProcessing")
    rows = processing.objects.filter(stripe_customer_id="", trigger__isnull=False).select_related("trigger")
    for row in rows.iterator(chunk_size=500):
        try:
            event = json.loads(row.trigger.body or "{}")
        except ValueError:
            continue
        found = event_stripe_customer_id(event) if isinstance(event, dict) else ""
        if found:
            processing.objects.filter(pk=row.pk).update(stripe_customer_id=found)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="stripeeventprocessing",
            name="stripe_customer_id",
            field=models.CharField(
                blank=True, db_default="", default="", max_length=255, verbose_name="Stripe customer id"
            ),
        ),
        migrations.RunPython(backfill_stripe_customer_ids, migrations.RunPython.noop, elidable=True),
    ]
