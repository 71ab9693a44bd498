from django.core.management.base import BaseCommand, CommandError

from integrations.trials.sync import trials_sync


class Command(BaseCommand):
    help = "Read the website's trial database (read-only) and upsert trial-stage customers."

    def add_arguments(self, parser):
        parser.add_argument("--path", help="SQLite file (default: TRIALS_DB_PATH)")
        parser.add_argument("--table", help="table name (default: TRIALS_TABLE)")

    def handle(self, *args, path=None, table=None, **options):
        result = trials_sync(path=path, table=table)
        if result.error:
            raise CommandError(f"Nothing changed: {result.error}")
        self.stdout.write(
            f"{result.read} signups read, {result.created} customers created, {result.moved_to_trial} moved to trial, "
            f"{result.skipped_rows} rows skipped"
        )
