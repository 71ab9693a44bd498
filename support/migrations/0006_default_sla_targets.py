"""Default SLA targets for every category (editable in the admin): in support hours, a VIP ("high") ticket gets its
first answer within 1 hour and each next one within 2; a normal one within 4 and 8."""

from django.db import migrations

DEFAULTS = [
    # priority, first response minutes, next response minutes, warn minutes before
    ("normal", 240, 480, 30),
    ("high", 60, 120, 15),
]


def add_defaults(apps, schema_editor):
    SlaTarget = apps.get_model("support", "SlaTarget")
    for priority, first, following, warn in DEFAULTS:
        SlaTarget.objects.get_or_create(
            category="",
            priority=priority,
            defaults={"first_response_minutes": first, "next_response_minutes": following, "warn_minutes": warn},
        )


class Migration(migrations.Migration):
    dependencies = [("support", "0005_saved_replies_sla_category_roles")]

    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
