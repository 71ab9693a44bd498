# The ticket page's tables and the saved replies / SLA tables were written side by side; this joins them.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("support", "0005_ticket_page"),
        ("support", "0006_default_sla_targets"),
    ]

    operations = []
