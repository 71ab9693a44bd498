from django.core.management.base import BaseCommand

from billing.sync import SyncSummary, stripe_sync_run


class Command(BaseCommand):
    help = (
        "List every Stripe subscription, mirror it through dj-stripe and heal the CRM (the same code as the daily "
        "08:00 UTC schedule). Shows progress per page and a summary."
    )

    def add_arguments(self, parser):
        parser.add_argument("--page-attempts", type=int, default=4, help="Attempts per page before giving up.")
        parser.add_argument("--retry-delay", type=float, default=2.0, help="Seconds before the first page retry.")

    def handle(self, *args, page_attempts=4, retry_delay=2.0, **options):
        def progress(summary: SyncSummary) -> None:
            self.stdout.write(
                f"page {summary.pages}: {summary.seen} seen, {summary.created} created, {summary.updated} updated, "
                f"{summary.skipped_not_modready} skipped, {summary.errors} errors"
            )

        summary = stripe_sync_run(progress=progress, page_attempts=page_attempts, retry_delay=retry_delay)
        self.stdout.write("")
        width = max(len(name) for name in summary.as_dict())
        for name, value in summary.as_dict().items():
            self.stdout.write(f"{name.replace('_', ' ').ljust(width)}  {value}")
        style = self.style.WARNING if summary.errors else self.style.SUCCESS
        self.stdout.write(style(f"Stripe sync finished with {summary.errors} error(s)."))
