"""The shared cache's table (settings CACHES: the database cache unless CACHE_REDIS_URL is set), made by `migrate`
so that no deployment step can be forgotten. createcachetable skips a table that exists and caches that are not
database caches; reversing leaves the table (it holds only disposable entries)."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop, elidable=False)]
