# The topics migration and the retention triggers' choices were written side by side; this joins them.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0015_topics_caps_quiet_hours"),
        ("automations", "0015_trigger_retention_events"),
    ]

    operations = []
