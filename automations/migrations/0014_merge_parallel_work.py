from django.db import migrations


class Migration(migrations.Migration):
    """Joins two migrations made side by side (the installation id, the rule pause); neither touches the other's
    tables."""

    dependencies = [
        ("automations", "0013_installation_id"),
        ("automations", "0013_rule_pause_and_blocked_emails"),
    ]

    operations = []
